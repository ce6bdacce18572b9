"""The results folder: locked appends, torn lines, archive, and starting or resuming runs."""

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from medbench.results.records import failure_reason, run_record, transcript_record, verdict_message
from medbench.results.resume import ResumeRefused, open_run, reruns_in_session
from medbench.results.writer import RunFolder

IDENTITY = {"model": "reference", "task_set": "generated", "task_set_sha256": "ab" * 32, "grader": "official"}


def outcome(task_id: str, result: str | None = '["S1"]') -> SimpleNamespace:
    return SimpleNamespace(
        task_id=task_id,
        status="completed",
        result=result,
        num_turns=1,
        history=[{"role": "user", "content": "prompt"}, {"role": "agent", "content": f"FINISH({result})"}],
        prompt_tokens=5,
        completion_tokens=None,
        model_latency_s=0.25,
        model_calls=1,
        retries=0,
        error=None,
    )


def lines_for(task_id: str, correct: bool = True, session: str = "s1", status: str = "completed") -> tuple[dict, dict]:
    done = outcome(task_id)
    done.status = status
    run = run_record(
        index=0,
        category=1,
        attempt=1,
        session=session,
        outcome=done,
        verdict=SimpleNamespace(correct=correct, reason=None if correct else "wrong MRN"),
        elapsed_s=0.3,
        environment_fingerprint="fake",
    )
    return run, transcript_record(run, done)


def test_run_record_keeps_upstream_fields_and_parses_the_finish_answer() -> None:
    run, transcript = lines_for("task1_1", correct=False)
    assert run["result"] == ["S1"] and run["result_raw"] == '["S1"]'
    assert run["reason"] == "wrong MRN" and run["completion_tokens"] is None
    assert transcript["transcript_id"] == run["transcript_id"] == "s1:task1_1:1"
    json.dumps(run)
    json.dumps(transcript)


def test_unparsable_finish_answer_is_kept_as_text() -> None:
    run = run_record(
        index=0,
        category=1,
        attempt=1,
        session="s",
        outcome=outcome("task1_1", "S1, S2"),
        verdict=SimpleNamespace(correct=False, reason="not JSON"),
        elapsed_s=0,
        environment_fingerprint="f",
    )
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
    run = run_record(
        index=0,
        category=1,
        attempt=1,
        session="s",
        outcome=done,
        verdict=SimpleNamespace(correct=False, reason=f"answer {result[:20]!r} is wrong"),
        elapsed_s=0,
        environment_fingerprint="f",
    )
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
    assert run["result"] == ["\U0001f600"]


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
    run, _ = record_and_append(tmp_path, '[[[1, 2]], {"a": [3]}]')
    assert run["result"] == [[[1, 2]], {"a": [3]}]


def test_the_writer_never_loses_a_line_to_text_that_is_not_utf8(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    folder.append({"task_id": "task1_1", "note": "\udfff"}, {"transcript_id": "x", "history": [{"content": "\ud800"}]})
    assert folder.records() == [{"task_id": "task1_1", "note": "\ufffd"}]


def test_resume_runs_infrastructure_failures_again_and_skips_the_rest(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False)
    folder.append(*lines_for("task1_1"))
    folder.append(*lines_for("task1_2", correct=False, status="error"))
    folder.append(*lines_for("task1_3", correct=False, status="cassette_mismatch"))
    folder.append(*lines_for("task1_4", correct=False, status="agent_invalid_action"))
    skipped = open_run(folder, identity=IDENTITY, details={}, session="s2", resume=True)
    assert skipped == {("task1_1", 1), ("task1_4", 1)}


def test_resume_judges_an_attempt_by_its_latest_line(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "reference")
    open_run(folder, identity=IDENTITY, details={}, session="s1", resume=False)
    folder.append(*lines_for("task1_1", correct=False, status="error"))
    folder.append(*lines_for("task1_1", session="s2"))
    folder.append(*lines_for("task1_2", session="s1"))
    folder.append(*lines_for("task1_2", correct=False, session="s2", status="error"))
    assert open_run(folder, identity=IDENTITY, details={}, session="s3", resume=True) == {("task1_1", 1)}


def test_reruns_in_session_counts_attempts_that_had_ended_in_infrastructure_failures() -> None:
    records = [
        lines_for("task1_1", status="error")[0],
        lines_for("task1_2", status="cassette_mismatch")[0],
        lines_for("task1_3", status="agent_invalid_action")[0],
        lines_for("task1_1", session="s2")[0],
        lines_for("task1_2", session="s2", status="error")[0],
        lines_for("task1_4", session="s2")[0],
    ]
    assert reruns_in_session(records, "s2") == 2
    assert reruns_in_session(records, "s1") == 0


def test_an_incorrect_attempt_whose_last_answer_was_cut_says_so_and_keeps_its_status() -> None:
    cut = outcome("task1_1")
    cut.status, cut.finish_reason, cut.truncated_answers = "agent_invalid_action", "length", 1
    run = run_record(
        index=0,
        category=1,
        attempt=1,
        session="s",
        outcome=cut,
        verdict=SimpleNamespace(correct=False, reason="agent_invalid_action"),
        elapsed_s=0,
        environment_fingerprint="f",
    )
    assert run["status"] == "agent_invalid_action" and run["finish_reason"] == "length"
    assert run["reason"] == (
        "agent_invalid_action; the last answer was cut at the completion-token limit (finish_reason length)"
    )
    assert run["truncated_answers"] == 1


def test_retry_accounting_reaches_the_record() -> None:
    slow = outcome("task1_1")
    slow.timeouts, slow.time_lost_s, slow.model_latency_s, slow.retries = 2, 61.23456, 62.5, 3
    run = run_record(
        index=0,
        category=1,
        attempt=1,
        session="s",
        outcome=slow,
        verdict=SimpleNamespace(correct=True, reason=None),
        elapsed_s=70,
        environment_fingerprint="f",
    )
    assert (run["timeouts"], run["time_lost_s"], run["latency_s"], run["retries"]) == (2, 61.235, 62.5, 3)


def test_the_failure_line_shows_the_error_behind_an_errored_attempt_shortened() -> None:
    run = {
        "task_id": "task1_1",
        "status": "error",
        "num_turns": 0,
        "reason": "error",
        "error": "ModelCallError: model call failed: HTTP 502: <html>\n" + "<p>bad gateway</p>" * 100,
    }
    line = verdict_message(run)
    assert line.startswith("task1_1 incorrect: error: ModelCallError: model call failed: HTTP 502: <html> <p>bad")
    assert line.endswith("... (status error, 0 turns)") and len(line) < 260 and "\n" not in line


def test_the_failure_line_puts_the_invalid_action_before_the_truncation_note() -> None:
    run = {
        "status": "agent_invalid_action",
        "reason": "agent_invalid_action; the last answer was cut",
        "error": "answer does not start with GET, POST or FINISH(: 'The patient'",
    }
    assert failure_reason(run) == (
        "agent_invalid_action: answer does not start with GET, POST or FINISH(: 'The patient'; the last answer was cut"
    )


def test_a_graded_attempt_shows_only_the_graders_reason() -> None:
    run = {"status": "completed", "reason": "task4: answer [1.8] != expected [2.1]", "error": None}
    assert failure_reason(run) == "task4: answer [1.8] != expected [2.1]"


def test_appended_lines_are_fsynced_off_the_attempts_path_and_sync_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`append` writes its lines (a killed process keeps them) and leaves the fsync to the
    background thread, held here by an event: `sync()` returns only once it has run."""
    from medbench.results import writer

    release, synced = threading.Event(), []
    real_fsync = writer.os.fsync

    def held_fsync(fd: int) -> None:
        release.wait(timeout=30)
        synced.append(Path(f"/proc/self/fd/{fd}").resolve())
        real_fsync(fd)

    monkeypatch.setattr(writer.os, "fsync", held_fsync)
    folder = RunFolder(tmp_path / "reference")
    folder.append(*lines_for("task1_1"))
    assert [r["task_id"] for r in folder.records()] == ["task1_1"]  # written, not yet fsynced
    assert synced == []
    waiter = threading.Thread(target=folder.sync)
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive()
    release.set()
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert {folder.runs_path.resolve(), folder.transcripts_path.resolve()} <= set(synced)
