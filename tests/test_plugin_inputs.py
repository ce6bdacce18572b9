"""Options that pick tasks and folders: exact ids, model names that make folders, options that would be ignored.

Driven through pytester with the scripted model and stand-in environment of test_plugin.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugin import bench, read_lines, run_bench, run_folder, task_records, write_tasks  # noqa: F401 (bench is a fixture)

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


def test_task_id_runs_exactly_the_named_tasks_where_k_matches_substrings(bench: pytest.Pytester) -> None:
    write_tasks(bench, task_records(12))
    by_substring = run_bench(bench, "-k", "task1_1", "--run-name=k")
    by_substring.assert_outcomes(passed=4)  # task1_1, task1_10, task1_11, task1_12
    exact = run_bench(bench, "--task-id", "task1_1,task1_3", "--task-id=task1_12", "--run-name=exact")
    exact.assert_outcomes(passed=3)
    ran = sorted(r["task_id"] for r in read_lines(run_folder(bench) / "exact" / "runs.jsonl"))
    assert ran == ["task1_1", "task1_12", "task1_3"]


def test_an_unknown_task_id_is_a_usage_error_naming_it(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--task-id=task1_1,task9_99")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--task-id: no task task9_99 in this task set*"])


@pytest.mark.parametrize("name", ["", "..", "/"])
def test_a_model_name_that_makes_no_folder_name_is_refused(bench: pytest.Pytester, name: str) -> None:
    result = run_bench(bench, f"--model={name}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not (bench.path / "results").exists()


def test_two_model_names_with_one_folder_name_never_archive_each_other(bench: pytest.Pytester) -> None:
    assert run_bench(bench, "--model=acme/m1").ret == 0
    folder = run_folder(bench, "acme_m1")
    before = (folder / "runs.jsonl").read_text()
    second = run_bench(bench, "--model=acme_m1")
    assert second.ret == pytest.ExitCode.USAGE_ERROR
    second.stdout.fnmatch_lines(["*holds a run of model 'acme/m1'*--run-name NAME or --results-dir DIR*"])
    assert (folder / "runs.jsonl").read_text() == before and not (folder / "archive").exists()


def test_official_dir_without_the_official_tasks_is_a_usage_error(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--official-dir=/nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--official-dir is only read with --tasks=official*"])


def test_only_the_newest_archives_are_kept_and_the_terminal_says_so(bench: pytest.Pytester) -> None:
    write_tasks(bench, task_records(1))
    for _ in range(7):
        result = run_bench(bench)
    archives = sorted((run_folder(bench) / "archive").iterdir())
    assert len(archives) == 5
    result.stdout.fnmatch_lines(
        ["*the previous run moved to *archive* (5 archive(s) kept, * MB; 1 older one(s) deleted*"]
    )


def test_a_session_without_benchmark_tests_says_nothing_about_cassettes(bench: pytest.Pytester) -> None:
    bench.makepyfile(test_plain="def test_plain():\n    assert True\n")
    (bench.path / "cassettes" / "reference").mkdir(parents=True)
    (bench.path / "cassettes" / "reference" / "task1_1.json").write_text("{}")
    result = run_bench(bench, "test_plain.py")
    result.assert_outcomes(passed=1)
    assert "medbench cassettes" not in result.stdout.str()


def test_benchmark_models_runs_pytest_per_model_and_says_where_the_results_are(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "scripts/benchmark_models.py",
            "--model",
            "reference",
            "--model",
            "do-nothing",
            "--api-key",
            "sk-never-on-the-command-line",
            "--results-dir",
            str(tmp_path),
            "--",
            "--ehr-scale=small",
            "--task-id=task2_1",
            "--disable-recording",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 1, completed.stdout[-2000:]  # do-nothing fails task2_1
    assert f"results of reference: {tmp_path / 'reference'} (pytest exit status 0)" in completed.stdout
    assert f"results of do-nothing: {tmp_path / 'do-nothing'} (pytest exit status 1)" in completed.stdout
    summary = json.loads((tmp_path / "reference" / "summary.json").read_text())
    assert summary["correct"] == 1 and "sk-never" not in (tmp_path / "reference" / "run.json").read_text()


def test_v2_task_sets_refuse_another_protocol_or_post_mode_and_a_bad_task1_anchor(bench: pytest.Pytester) -> None:
    for option in ("--protocol=tools", "--post-mode=official"):
        result = run_bench(bench, "--tasks=generated-v2", option)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*does not apply to --tasks=generated-v2*MedAgentBench v2*"])
    result = run_bench(bench, "--tasks=generated-v2", "--v2-task1-anchor=yesterday")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--v2-task1-anchor='yesterday': expected an ISO 8601 time with an offset*"])
