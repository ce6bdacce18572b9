"""export-traces: chat-format training lines, their provenance, and the guard against the official test set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from helpers.official import OFFICIAL_DIR, needs_official
from helpers.transcripts import generated_task_set, record_attempt, sample_results, task, write_summary
from medbench.reports import ReportError
from medbench.reports.cli import main
from medbench.reports.traces import ContaminationError, ExportOptions, export_traces
from medbench.tasks.official import load_official
from medbench.tasks.task_file import load_task_file


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def export(paths: list[Path], out: Path, **options) -> list[dict]:
    export_traces(paths, out, ExportOptions(**options), official_dir=OFFICIAL_DIR)
    return read_lines(out)


def provenance(out: Path) -> dict:
    return json.loads(out.with_name(out.stem + ".provenance.json").read_text(encoding="utf-8"))


def assert_chat_schema(line: dict) -> None:
    """What OpenAI fine-tuning and TRL read: messages alternating user/assistant, ending with the answer."""
    assert set(line) >= {"messages"}
    roles = [m["role"] for m in line["messages"]]
    assert all(set(m) == {"role", "content"} for m in line["messages"])
    assert roles[0] == "user" and roles[-1] == "assistant"
    assert roles == ["user", "assistant"] * (len(roles) // 2)
    assert all(isinstance(m["content"], str) and m["content"] for m in line["messages"])


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return sample_results(tmp_path / "results")


@needs_official
def test_correct_attempts_become_chat_lines_of_the_conversation(results: Path, tmp_path: Path):
    lines = export([results], tmp_path / "traces.jsonl")
    assert len(lines) == 5  # strong-model 4 correct, weak-model 1
    for line in lines:
        assert set(line) == {"messages"}
        assert_chat_schema(line)
    glucose = next(line for line in lines if line["messages"][-1]["content"] == "FINISH([142])")
    assert glucose["messages"][0]["content"].endswith(
        "Question: What is the most recent glucose value of patient S1234567?\n"
    )
    assert glucose["messages"][1]["content"].startswith("GET http://localhost:8080/fhir/Observation?patient=S1234567")
    assert glucose["messages"][2]["content"].startswith("Here is the response from the GET request:\n{")


@needs_official
def test_provenance_counts_match_the_exported_lines(results: Path, tmp_path: Path):
    out = tmp_path / "traces.jsonl"
    lines = export([results], out)
    record = provenance(out)
    assert record["counts"]["lines"] == len(lines) == record["counts"]["correct"]
    assert record["counts"]["by_category"] == {"task2": 2, "task5": 1, "task7": 2}
    assert record["counts"]["skipped"] == {"incorrect": 3, "other_category": 0, "no_transcript": 0, "repeat_of_task": 0}
    runs = {run["model"]: run for run in record["runs"]}
    assert (runs["strong-model"]["lines"], runs["weak-model"]["lines"]) == (4, 1)
    assert runs["weak-model"]["task_set"]["name"] == "generated-v1-seed5"
    assert (runs["weak-model"]["grader"], runs["weak-model"]["protocol"]) == ("official", "text")
    assert record["contamination_check"]["overlap"] == []
    assert record["traces_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record["options"]["with_incorrect"] is False


@needs_official
def test_with_incorrect_lines_carry_their_verdict_for_preference_data(results: Path, tmp_path: Path):
    lines = export([results / "weak-model"], tmp_path / "traces.jsonl", with_incorrect=True)
    assert len(lines) == 4
    verdicts = {line["task_id"]: line["verdict"] for line in lines}
    assert verdicts["task7_1"] == {
        "correct": False,
        "status": "completed",
        "reason": "task7: answer [101] != expected [142]",
    }
    assert verdicts["task2_1"]["correct"] is True
    assert {line["model"] for line in lines} == {"weak-model"}
    for line in lines:
        assert_chat_schema(line)


@needs_official
def test_category_filter_exports_only_that_category(results: Path, tmp_path: Path):
    out = tmp_path / "traces.jsonl"
    lines = export([results], out, categories=("task7",))
    assert len(lines) == 2
    skipped = provenance(out)["counts"]["skipped"]
    assert (skipped["other_category"], skipped["incorrect"]) == (4, 2)


@needs_official
def test_one_per_task_keeps_the_first_correct_attempt_of_each_task(tmp_path: Path):
    glucose = task("task7_1", "What is the most recent glucose value of patient S1234567?")
    task_set = generated_task_set([glucose])
    run = tmp_path / "model"
    record_attempt(run, task_set, glucose, [("FINISH([1])", None)], correct=False, reason="wrong", attempt=1)
    record_attempt(run, task_set, glucose, [("FINISH([2])", None)], correct=True, attempt=2)
    record_attempt(run, task_set, glucose, [("FINISH([3])", None)], correct=True, attempt=3)
    write_summary(run, "model", task_set)
    out = tmp_path / "traces.jsonl"
    (line,) = export([run], out, one_per_task=True)
    assert line["messages"][-1]["content"] == "FINISH([2])"
    assert provenance(out)["counts"]["skipped"] == {
        "incorrect": 1,
        "other_category": 0,
        "no_transcript": 0,
        "repeat_of_task": 1,
    }


@needs_official
def test_the_guard_refuses_the_official_task_set_and_shows_how_to_make_a_training_set(tmp_path: Path):
    official = load_official(official_dir=OFFICIAL_DIR)
    run = tmp_path / "results" / "gpt-x"
    record_attempt(run, official, official.tasks[0], [('FINISH(["S0000000"])', None)], correct=True)
    write_summary(run, "gpt-x", official)
    out = tmp_path / "traces.jsonl"
    with pytest.raises(ContaminationError) as refused:
        export([run], out)
    message = str(refused.value)
    assert "is the official test set" in message and "leaks the benchmark" in message
    assert "--task-seed=" in message and "--ehr-seed=" in message and "export-traces" in message
    assert "--allow-test-set" in message
    assert not out.exists() and not out.with_name("traces.provenance.json").exists()


@needs_official
def test_the_guard_refuses_a_task_file_that_copies_one_official_instruction(tmp_path: Path):
    official = load_official(official_dir=OFFICIAL_DIR)
    copied = next(t for t in official.tasks if t.category == 1)
    task_file = tmp_path / "my_tasks.json"
    task_file.write_text(
        json.dumps(
            [
                {
                    "id": "task2_1",
                    "instruction": "How old is patient S1234567?",
                    "context": "now",
                    "eval_MRN": "S1234567",
                },
                {
                    "id": "task1_99",
                    "instruction": copied.instruction,
                    "context": "a new context",
                    "eval_MRN": "S1234567",
                    "sol": copied.sol,
                },
            ]
        ),
        encoding="utf-8",
    )
    task_set = load_task_file(task_file)
    run = tmp_path / "results" / "teacher"
    for index, one in enumerate(task_set.tasks):
        record_attempt(run, task_set, one, [("FINISH([1])", None)], correct=True, index=index)
    write_summary(run, "teacher", task_set)
    with pytest.raises(
        ContaminationError, match=f"quote the instruction of an official task: .*= official {copied.id}"
    ):
        export([run], tmp_path / "traces.jsonl")
    # the guard looks at what is exported: the file's own task2 task alone is fine
    assert len(export([run], tmp_path / "only.jsonl", categories=("task2",))) == 1


@needs_official
def test_allow_test_set_exports_and_records_the_overlap(tmp_path: Path):
    official = load_official(official_dir=OFFICIAL_DIR)
    run = tmp_path / "gpt-x"
    record_attempt(run, official, official.tasks[0], [("FINISH([1])", None)], correct=True)
    write_summary(run, "gpt-x", official)
    out = tmp_path / "traces.jsonl"
    assert len(export([run], out, allow_test_set=True)) == 1
    check = provenance(out)["contamination_check"]
    assert check["official_sha256"] == official.sha256 and "is the official test set" in check["overlap"][0]


def test_without_the_official_assets_nothing_is_exported_unless_allowed(results: Path, tmp_path: Path):
    out = tmp_path / "traces.jsonl"
    with pytest.raises(ReportError, match="cannot check these runs against the official"):
        export_traces([results], out, official_dir=tmp_path / "no-such-dir")
    assert not out.exists()
    export_traces([results], out, ExportOptions(allow_test_set=True), official_dir=tmp_path / "no-such-dir")
    assert provenance(out)["contamination_check"] == {"checked_against": None, "overlap": None}


@needs_official
def test_the_command_refuses_with_exit_2_and_writes_the_two_files_otherwise(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "traces.jsonl"
    argv = [
        "export-traces",
        str(results / "strong-model"),
        str(results / "weak-model"),
        "--out",
        str(out),
        "--official-dir",
        str(OFFICIAL_DIR),
        "--one-per-task",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == [str(out), str(tmp_path / "traces.provenance.json")]
    assert len(read_lines(out)) == 4  # weak-model's task2_1 repeats strong-model's: same task set, same task
    assert main(["export-traces", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
