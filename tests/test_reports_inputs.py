"""Reading result folders and model metadata, and refusing to mix runs measured differently."""

from types import SimpleNamespace

import pytest

from helpers.reports import run_line, write_model
from medbench.reports import MetadataError, MixedRunsError, ResultsError, analyse
from medbench.reports.consistency import check_consistent
from medbench.reports.load import load_results
from medbench.reports.metadata import PROJECT_MODELS_FILE, load_catalog
from medbench.results.records import run_record
from medbench.results.summary import build_summary

OURS = {
    "task_set": "generated",
    "task_set_sha256": "abc123",
    "environment": "embedded",
    "protocol": "text",
    "grader": "official",
    "post_mode": "official",
    "max_rounds": 8,
}


def _write(root, slug, **modes):
    write_model(root, slug, [run_line("task1_1", True)], summary={"modes": {**OURS, **modes}})


def test_runs_with_the_same_modes_are_compared(tmp_path):
    _write(tmp_path, "a")
    _write(tmp_path, "b")
    assert check_consistent(load_results(tmp_path)) == []


def test_different_grader_modes_are_refused_naming_the_runs(tmp_path):
    _write(tmp_path, "a")
    _write(tmp_path, "b")
    _write(tmp_path, "c", grader="corrected")
    with pytest.raises(
        MixedRunsError, match=r"(?s)grader differs: 'corrected' in c; 'official' in a, b.*--allow-mixed"
    ):
        analyse(tmp_path)


def test_different_task_set_hashes_and_protocols_are_each_named(tmp_path):
    _write(tmp_path, "a")
    _write(tmp_path, "b", task_set_sha256="def456", protocol="tools")
    with pytest.raises(MixedRunsError) as raised:
        check_consistent(load_results(tmp_path))
    assert "task_set_sha256 differs: 'abc123' in a; 'def456' in b" in str(raised.value)
    assert "protocol differs: 'text' in a; 'tools' in b" in str(raised.value)


def test_allow_mixed_compares_anyway_and_keeps_the_differences(tmp_path):
    _write(tmp_path, "a")
    _write(tmp_path, "b", grader="corrected")
    analysis = analyse(tmp_path, allow_mixed=True)
    assert analysis.mode_differences == ["grader differs: 'corrected' in b; 'official' in a"]
    assert len(analysis.tables["leaderboard"]) == 2


def test_upstream_folder_without_modes_differs_from_a_recorded_run(tmp_path):
    _write(tmp_path, "ours")
    write_model(tmp_path, "upstream", [run_line("task1_1", True)])
    with pytest.raises(MixedRunsError, match="'unrecorded' in upstream"):
        analyse(tmp_path)


def test_modes_may_come_from_run_lines_when_the_summary_lacks_them(tmp_path):
    write_model(tmp_path, "a", [run_line("task1_1", True, modes=OURS)])
    assert load_results(tmp_path)[0].modes["task_set_sha256"] == "abc123"


def test_folders_without_runs_jsonl_are_ignored(tmp_path):
    write_model(tmp_path, "model", [run_line("task1_1", True)])
    (tmp_path / "plots").mkdir()
    (tmp_path / "report").mkdir()
    assert [m.slug for m in load_results(tmp_path)] == ["model"]


def test_a_results_directory_without_model_folders_names_the_expected_layout(tmp_path):
    with pytest.raises(ResultsError, match=r"<model_slug>/runs.jsonl"):
        load_results(tmp_path)


def test_a_broken_runs_line_is_reported_with_file_and_line_number(tmp_path):
    folder = write_model(tmp_path, "broken", [run_line("task1_1", True)])
    with (folder / "runs.jsonl").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(ResultsError, match=r"broken/runs.jsonl:2: not valid JSON"):
        load_results(tmp_path)


def test_a_runs_line_without_task_id_names_the_missing_field(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "runs.jsonl").write_text('{"status": "completed", "correct": true}\n')
    with pytest.raises(ResultsError, match="missing field 'task_id'"):
        load_results(tmp_path)


def test_upstream_lines_without_optional_fields_load_with_defaults(tmp_path):
    folder = tmp_path / "upstream"
    folder.mkdir()
    (folder / "runs.jsonl").write_text('{"index": 0, "task_id": "task2_4", "status": "completed", "correct": true}\n')
    record = load_results(tmp_path)[0].records[0]
    assert (record.category, record.attempt, record.prompt_tokens, record.reason) == ("task2", 1, None, None)


def test_project_models_file_names_the_published_models_and_task_labels():
    catalog = load_catalog()
    assert catalog.source == PROJECT_MODELS_FILE
    assert catalog.info_for("openai_gpt-4o", "").display_name == "GPT-4o"
    assert catalog.info_for("some-folder", "meta-llama/llama-4-maverick").parameters == "400B (MoE)"
    assert catalog.task_label("task8") == "Orthopedic referral"


def test_results_folder_models_file_overrides_entries_one_by_one_and_keeps_the_rest(tmp_path):
    (tmp_path / "models.toml").write_text(
        '[models.mine]\ndisplay_name = "Mine"\nparameters = "7B"\n'
        '[models."openai_gpt-4o"]\ndisplay_name = "GPT-4o (ours)"\n'
        '[tasks]\ntask2 = "Age"\n'
    )
    catalog = load_catalog(results_dir=tmp_path)
    assert catalog.info_for("mine", "mine").display_name == "Mine"
    assert catalog.info_for("openai_gpt-4o", "openai/gpt-4o").display_name == "GPT-4o (ours)"
    assert catalog.info_for("some-folder", "meta-llama/llama-4-maverick").parameters == "400B (MoE)"
    assert catalog.task_label("task1") == "Patient lookup" and catalog.task_label("task2") == "Age"


def test_a_negative_price_is_refused_naming_the_entry(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("[models.bad]\ninput_usd_per_mtok = -1\n")
    with pytest.raises(MetadataError, match=r"\[models.'bad'\]: input_usd_per_mtok must be a non-negative number"):
        load_catalog(path)


def test_a_missing_explicit_models_file_is_an_error(tmp_path):
    with pytest.raises(MetadataError, match="models file .*nope.toml not found"):
        load_catalog(tmp_path / "nope.toml")


def test_clashing_display_names_get_the_folder_name_appended(tmp_path):
    (tmp_path / "models.toml").write_text(
        '[models.run1]\ndisplay_name = "Same"\n[models.run2]\ndisplay_name = "Same"\n'
    )
    write_model(tmp_path, "run1", [run_line("task1_1", True)])
    write_model(tmp_path, "run2", [run_line("task1_1", False)])
    assert list(analyse(tmp_path).tables["leaderboard"]["Model"]) == ["Same (run1)", "Same (run2)"]


def _medbench_summary(grader: str, sha: str, lines: list) -> dict:
    manifest = {
        "identity": {
            "model": "m",
            "task_set": "generated",
            "task_set_sha256": sha,
            "protocol": "text",
            "grader": grader,
            "post_mode": "official",
            "max_rounds": 8,
            "repeats": 1,
        },
        "details": {"task_count": len(lines)},
    }
    return build_summary(manifest, lines)


def test_summaries_written_by_medbench_results_are_checked_on_task_set_hash_and_grader(tmp_path):
    lines = [run_line("task1_1", True, category="task1", attempt=1)]
    write_model(tmp_path, "a", lines, summary=_medbench_summary("official", "abc", lines))
    write_model(tmp_path, "b", lines, summary=_medbench_summary("official", "abc", lines))
    assert load_results(tmp_path)[0].modes["task_set_sha256"] == "abc"
    assert check_consistent(load_results(tmp_path)) == []
    write_model(tmp_path, "c", lines, summary=_medbench_summary("corrected", "xyz", lines))
    differences = check_consistent(load_results(tmp_path), allow_mixed=True)
    assert differences == [
        "task_set_sha256 differs: 'abc' in a, b; 'xyz' in c",
        "grader differs: 'corrected' in c; 'official' in a, b",
    ]


def test_run_name_folders_are_models_of_their_own_and_archives_are_skipped(tmp_path):
    write_model(tmp_path / "gpt-4o", "t0", [run_line("task1_1", True)])
    write_model(tmp_path / "gpt-4o", "t1", [run_line("task1_1", False)])
    write_model(tmp_path / "gpt-4o" / "archive", "20261125T000000Z", [run_line("task1_1", False)])
    write_model(tmp_path / "reference" / "archive", "20261125T000000Z", [run_line("task1_1", False)])
    write_model(tmp_path, "reference", [run_line("task1_1", True)])
    models = load_results(tmp_path)
    assert [m.slug for m in models] == ["gpt-4o/t0", "gpt-4o/t1", "reference"]
    assert models[0].file_stem == "gpt-4o__t0"


def test_the_category_field_of_a_line_wins_over_the_task_id(tmp_path):
    write_model(tmp_path, "m", [run_line("custom-7", True, category="task4")])
    assert load_results(tmp_path)[0].records[0].category == "task4"


def test_lines_written_by_medbench_results_load_with_tokens_latency_and_reason(tmp_path):
    outcome = SimpleNamespace(
        task_id="task5_3",
        status="completed",
        result='["done"]',
        history=[],
        num_turns=3,
        prompt_tokens=1200,
        completion_tokens=40,
        model_latency_s=1.25,
        model_calls=3,
        retries=0,
        error=None,
    )
    verdict = SimpleNamespace(correct=False, reason="dose 2 g expected")
    line = run_record(
        index=0,
        category=5,
        attempt=2,
        session="s",
        outcome=outcome,
        verdict=verdict,
        elapsed_s=2.0,
        environment_fingerprint="embedded:test",
    )
    write_model(tmp_path, "m", [line])
    record = load_results(tmp_path)[0].records[0]
    assert (record.category, record.attempt, record.correct, record.reason) == ("task5", 2, False, "dose 2 g expected")
    assert (record.prompt_tokens, record.completion_tokens, record.latency_s) == (1200, 40, 1.25)
