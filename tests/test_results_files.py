"""The results folder: locked appends, torn lines, archive, and starting or resuming runs."""

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from medbench.results.records import run_record, transcript_record
from medbench.results.resume import ResumeRefused, open_run
from medbench.results.writer import RunFolder

IDENTITY = {"model": "reference", "task_set": "generated", "task_set_sha256": "ab" * 32, "grader": "official"}


def outcome(task_id: str, result: str | None = '["S1"]') -> SimpleNamespace:
    return SimpleNamespace(task_id=task_id, status="completed", result=result, num_turns=1,
                           history=[{"role": "user", "content": "prompt"}, {"role": "agent", "content": f"FINISH({result})"}],
                           prompt_tokens=5, completion_tokens=None, model_latency_s=0.25, model_calls=1, retries=0, error=None)


def lines_for(task_id: str, correct: bool = True, session: str = "s1") -> tuple[dict, dict]:
    done = outcome(task_id)
    run = run_record(index=0, category=1, attempt=1, session=session, outcome=done,
                     verdict=SimpleNamespace(correct=correct, reason=None if correct else "wrong MRN"),
                     elapsed_s=0.3, environment_fingerprint="fake")
    return run, transcript_record(run, done)


def test_run_record_keeps_upstream_fields_and_parses_the_finish_answer() -> None:
    run, transcript = lines_for("task1_1", correct=False)
    assert run["result"] == ["S1"] and run["result_raw"] == '["S1"]'
    assert run["reason"] == "wrong MRN" and run["completion_tokens"] is None
    assert transcript["transcript_id"] == run["transcript_id"] == "s1:task1_1:1"
    json.dumps(run)
    json.dumps(transcript)


def test_unparsable_finish_answer_is_kept_as_text() -> None:
    run = run_record(index=0, category=1, attempt=1, session="s", outcome=outcome("task1_1", "S1, S2"),
                     verdict=SimpleNamespace(correct=False, reason="not JSON"), elapsed_s=0, environment_fingerprint="f")
    assert run["result"] == "S1, S2"


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")

    def write(worker: int) -> None:
        for n in range(25):
            folder.append(*lines_for(f"task1_{worker * 100 + n}"))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["task_id"] for r in folder.records()}) == 100


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    folder.append(*lines_for("task1_1"))
    with folder.runs_path.open("a") as handle:
        handle.write('{"task_id": "task1_2", "sta')
    with pytest.warns(UserWarning, match="torn line"):
        assert [r["task_id"] for r in folder.records()] == ["task1_1"]
    folder.append(*lines_for("task1_3"))
    with pytest.warns(UserWarning, match="torn line"):
        assert [r["task_id"] for r in folder.records()] == ["task1_1", "task1_3"]


def test_a_new_run_archives_the_old_files(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False)
    folder.append(*lines_for("task1_1"))
    assert open_run(folder, identity=IDENTITY, details={}, session="s2", resume=False) == set()
    assert folder.records() == []
    assert len(list((folder.path / "archive").glob("*/runs.jsonl"))) == 1
    assert folder.read_manifest()["sessions"] == ["s2"]


def test_resume_returns_the_recorded_attempts_and_joins_the_run(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False)
    folder.append(*lines_for("task1_1"))
    assert open_run(folder, identity=IDENTITY, details={}, session="s2", resume=True) == {("task1_1", 1)}
    assert open_run(folder, identity=IDENTITY, details={}, session="s2", resume=True) == {("task1_1", 1)}
    assert folder.read_manifest()["sessions"] == ["s1", "s2"]


def test_workers_of_a_fresh_session_join_without_archiving_again(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False)
    folder.append(*lines_for("task1_1"))
    assert open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False) == set()
    assert len(folder.records()) == 1


def test_resume_with_other_settings_is_refused_naming_them(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False)
    with pytest.raises(ResumeRefused, match="grader: 'official' -> 'corrected'"):
        open_run(folder, identity={**IDENTITY, "grader": "corrected"}, details={}, session="s2", resume=True)


def test_resume_of_files_without_a_manifest_is_refused(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    folder.append(*lines_for("task1_1"))
    with pytest.raises(ResumeRefused, match="has no run.json"):
        open_run(folder, identity=IDENTITY, details={}, session="s2", resume=True)


def test_resume_with_nothing_recorded_starts_a_run(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    assert open_run(folder, identity=IDENTITY, details={}, session="s1", resume=True) == set()
    assert folder.read_manifest()["identity"] == IDENTITY


def record_and_append(tmp_path: Path, result: str, error: str | None = None) -> tuple[dict, dict]:
    """Build both lines for an attempt whose answer is `result` and write them; return what was read back."""
    done = outcome("task1_1", result)
    done.error = error
    run = run_record(index=0, category=1, attempt=1, session="s", outcome=done,
                     verdict=SimpleNamespace(correct=False, reason=f"answer {result[:20]!r} is wrong"),
                     elapsed_s=0, environment_fingerprint="f")
    folder = RunFolder(tmp_path / "reference")
    folder.append(run, transcript_record(run, done))
    (read_run,) = folder.records()
    (read_transcript,) = [json.loads(line) for line in folder.transcripts_path.read_text(encoding="utf-8").splitlines()]
    return read_run, read_transcript


def test_a_lone_surrogate_in_the_answer_is_recorded_as_u_fffd(tmp_path: Path) -> None:
    run, transcript = record_and_append(tmp_path, '["\\ud800", "S1"]', error="UnicodeEncodeError: '\ud800'")
    assert run["result"] == ["\ufffd", "S1"]
    assert run["result_raw"] == '["\\ud800", "S1"]'  # escaped in JSON text, so still valid
    assert run["error"] == "UnicodeEncodeError: '\ufffd'"
    assert transcript["history"][-1]["content"] == 'FINISH(["\\ud800", "S1"])'


def test_a_raw_lone_surrogate_in_the_transcript_is_recorded_as_u_fffd(tmp_path: Path) -> None:
    run, transcript = record_and_append(tmp_path, '["S1\ud800"]')
    assert run["result"] == ["S1\ufffd"] and run["result_raw"] == '["S1\ufffd"]'
    assert transcript["history"][-1]["content"] == 'FINISH(["S1\ufffd"])'


def test_a_valid_surrogate_pair_is_kept_as_the_character_it_encodes(tmp_path: Path) -> None:
    run, _ = record_and_append(tmp_path, '["\ud83d\ude00"]')
    assert run["result"] == ["\U0001F600"]


def test_an_answer_nested_5000_deep_is_recorded_as_its_text(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    run, transcript = record_and_append(tmp_path, deep)
    assert run["result"] == deep and run["result_raw"] == deep
    assert transcript["history"][-1]["content"] == f"FINISH({deep})"


def test_an_answer_nested_just_under_the_recursion_limit_is_recorded_as_its_text(tmp_path: Path) -> None:
    deep = "[" * 900 + "]" * 900
    run, _ = record_and_append(tmp_path, deep)
    assert run["result"] == deep


def test_a_shallow_nested_answer_is_still_parsed(tmp_path: Path) -> None:
    run, _ = record_and_append(tmp_path, "[[[1, 2]], {\"a\": [3]}]")
    assert run["result"] == [[[1, 2]], {"a": [3]}]


def test_the_writer_never_loses_a_line_to_text_that_is_not_utf8(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    folder.append({"task_id": "task1_1", "note": "\udfff"}, {"transcript_id": "x", "history": [{"content": "\ud800"}]})
    assert folder.records() == [{"task_id": "task1_1", "note": "\ufffd"}]
