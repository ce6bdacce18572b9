"""summary.json from records: upstream fields first, then statistics and provenance."""

from typing import Any

from medbench.results.summary import build_summary, model_calls_line, summary_table

MANIFEST: dict[str, Any] = {
    "harness_version": "0.1.0",
    "created": "2026-11-25T08:00:00+00:00",
    "identity": {
        "model": "acme/m1",
        "task_set": "generated",
        "task_set_sha256": "ab" * 32,
        "protocol": "text",
        "grader": "official",
        "post_mode": "official",
        "max_rounds": 8,
        "strip_think": False,
        "repeats": 1,
        "fhir_display_url": "http://localhost:8080/fhir/",
        "environment": {"kind": "embedded", "ehr_seed": 0, "ehr_scale": "small"},
    },
    "details": {"task_count": 4},
    "sessions": ["s1", "s2"],
    "session_elapsed": {"s1": 10.0, "s2": 5.5},
}


def record(task_id: str, correct: bool, status: str = "completed", attempt: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "correct": correct,
        "status": status,
        "attempt": attempt,
        "category": task_id.split("_")[0],
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "latency_s": 0.5,
        "environment_fingerprint": "embedded:ehr.sqlite",
        **extra,
    }


def test_summary_has_the_upstream_fields_with_accuracy_as_percentage() -> None:
    rows = [
        record("task1_1", True),
        record("task1_2", False),
        record("task10_1", True),
        record("task2_1", False, status="agent_invalid_action"),
    ]
    summary = build_summary(MANIFEST, rows)
    assert list(summary)[:11] == [
        "model",
        "total",
        "completed",
        "correct",
        "invalid_action",
        "limit_reached",
        "context_limit",
        "error",
        "task_breakdown",
        "elapsed_seconds",
        "accuracy",
    ]
    assert summary["model"] == "acme/m1"
    assert (summary["total"], summary["completed"], summary["correct"], summary["invalid_action"]) == (4, 3, 2, 1)
    assert summary["accuracy"] == 50.0
    assert summary["elapsed_seconds"] == 15.5


def test_task_breakdown_orders_task10_after_task2() -> None:
    summary = build_summary(MANIFEST, [record("task10_1", True), record("task2_1", False), record("task1_1", True)])
    assert list(summary["task_breakdown"]) == ["task1", "task2", "task10"]
    assert summary["task_breakdown"]["task2"] == {
        "total": 1,
        "correct": 0,
        "accuracy": 0.0,
        "accuracy_ci95": [0.0, 79.35],
    }


def test_the_last_record_of_an_attempt_wins() -> None:
    summary = build_summary(MANIFEST, [record("task1_1", False), record("task1_1", True)])
    assert (summary["total"], summary["correct"]) == (1, 1)


def test_errored_attempts_count_in_the_total_and_as_infrastructure_failures() -> None:
    summary = build_summary(MANIFEST, [record("task1_1", True), record("task1_2", False, status="error")])
    assert summary["total"] == 2 and summary["error"] == 1 and summary["accuracy"] == 50.0
    assert summary["infrastructure_failures"] == 1


def test_summary_names_task_set_modes_environment_and_completeness() -> None:
    summary = build_summary(MANIFEST, [record("task1_1", True)])
    assert summary["task_set"] == {"name": "generated", "sha256": "ab" * 32, "task_count": 4}
    assert summary["modes"]["grader"] == "official" and summary["modes"]["max_rounds"] == 8
    assert summary["environment"] == {
        "kind": "embedded",
        "ehr_seed": 0,
        "ehr_scale": "small",
        "seating": "none",
        "display_url": "http://localhost:8080/fhir/",
        "fingerprint": "embedded:ehr.sqlite",
    }
    assert summary["expected_total"] == 4 and summary["complete"] is False
    assert summary["tokens"] == {"prompt": 10, "completion": 2, "total": 12}


def with_environment(task_set: str, environment: dict) -> dict:
    return {**MANIFEST, "identity": {**MANIFEST["identity"], "task_set": task_set, "environment": environment}}


def test_official_tasks_seated_by_situation_read_real_situations_synthetic_charts() -> None:
    manifest = with_environment(
        "official", {"kind": "embedded", "ehr_seed": 0, "ehr_scale": "full", "seating": "situations"}
    )
    summary = build_summary(manifest, [record("task1_1", True)])
    assert summary["environment"]["seating"] == "situations"
    assert summary["comparability"]["level"] == "situations"
    assert summary["comparability"]["label"] == "official tasks, real situations, synthetic charts"
    assert "official MedAgentBench Docker server" in summary["comparability"]["note"]


def test_generated_tasks_on_the_synthetic_ehr_are_not_comparable_with_published_scores() -> None:
    summary = build_summary(MANIFEST, [record("task1_1", True)])
    assert summary["comparability"]["level"] == "none"
    assert summary["comparability"]["label"] == "generated tasks, synthetic EHR"


def test_a_task_file_with_plain_seating_is_not_comparable_either() -> None:
    manifest = with_environment(
        "file:mine.json", {"kind": "embedded", "ehr_seed": 0, "ehr_scale": "small", "seating": "tasks"}
    )
    assert (
        build_summary(manifest, [record("task1_1", True)])["comparability"]["label"]
        == "task file, synthetic situations and charts"
    )


def test_an_external_server_records_no_seating_and_says_comparability_depends_on_the_server() -> None:
    manifest = with_environment("official", {"kind": "external", "fhir_url": "http://localhost:8080/fhir/"})
    summary = build_summary(manifest, [record("task1_1", True)])
    assert "seating" not in summary["environment"]
    assert summary["comparability"]["level"] == "external"
    assert summary["comparability"]["label"] == "official tasks, external FHIR server"


def test_unknown_token_counts_do_not_break_the_totals() -> None:
    summary = build_summary(MANIFEST, [record("task1_1", True, prompt_tokens=None, completion_tokens=None)])
    assert summary["tokens"]["total"] == 0


def test_table_has_a_row_per_category_and_an_overall_row() -> None:
    table = summary_table(build_summary(MANIFEST, [record("task1_1", True), record("task2_1", False)]))
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["category", "total", "correct", "accuracy"]
    assert [line.split()[0] for line in lines[2:]] == ["task1", "task2", "all"]


def test_a_killed_session_counts_the_span_of_its_records_as_elapsed_time() -> None:
    manifest = {**MANIFEST, "sessions": ["s1", "killed"], "session_elapsed": {"s1": 10.0}}
    rows = [
        record("task1_1", True, session="killed", finished_at="2026-11-25T08:00:00+00:00"),
        record("task1_2", True, session="killed", finished_at="2026-11-25T08:00:42+00:00"),
    ]
    assert build_summary(manifest, rows)["elapsed_seconds"] == 52.0


def test_refused_requests_are_totalled_and_records_without_the_field_count_zero() -> None:
    summary = build_summary(
        MANIFEST,
        [
            record("task1_1", True, refused_requests=2),
            record("task1_2", False),
            record("task1_3", False, refused_requests=1),
        ],
    )
    assert summary["refused_requests"] == 3


def test_summary_counts_retries_timeouts_time_lost_and_truncated_answers() -> None:
    rows = [
        record(
            "task1_1",
            True,
            model_calls=3,
            retries=2,
            timeouts=1,
            time_lost_s=31.5,
            truncated_answers=1,
            finish_reason="stop",
        ),
        record(
            "task1_2",
            False,
            status="agent_invalid_action",
            model_calls=1,
            retries=0,
            timeouts=0,
            time_lost_s=0.0,
            truncated_answers=1,
            finish_reason="length",
        ),
        record("task1_3", True),
    ]
    summary = build_summary(MANIFEST, rows)
    assert summary["model_calls"] == {
        "calls": 4,
        "retries": 2,
        "timeouts": 1,
        "time_lost_s": 31.5,
        "truncated_answers": 2,
        "attempts_ending_truncated": 1,
    }
    assert model_calls_line(summary) == (
        "model calls: 4, 2 retried (1 timeouts, 31.5 s lost to failed attempts and "
        "waits); 2 answers cut at the token limit (1 attempts ended on one)"
    )


def test_a_run_without_retries_or_truncation_prints_no_model_call_line() -> None:
    assert model_calls_line(build_summary(MANIFEST, [record("task1_1", True, model_calls=2)])) is None
