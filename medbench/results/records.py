"""One task's outcome and verdict turned into the lines of runs.jsonl and transcripts.jsonl.

Field names follow the upstream runs.jsonl (index, task_id, status, correct, result,
num_turns, time); everything else is added beside them, never renamed. Values are JSON
primitives only, because the same data travels to the xdist controller and to
pytest-json-report, where anything else crashes a worker or is silently dropped.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from medbench.jsonsafe import json_safe, parse_shallow, valid_text
from medbench.outcomes import COMPLETED, TRUNCATED, TaskOutcome, Verdict

RUNS_FILE = "runs.jsonl"
TRANSCRIPTS_FILE = "transcripts.jsonl"

# What the reason of an attempt whose last answer was cut by the completion-token cap adds.
TRUNCATION_NOTE = "the last answer was cut at the completion-token limit (finish_reason length)"
ERROR_CHARS_SHOWN = 200
REASON_CHARS_SHOWN = 300

RecordKey = tuple[str, int]
# The run's modes, as summary.json `modes` names them (also written on each runs.jsonl line).
MODE_KEYS = ("protocol", "grader", "post_mode", "max_rounds", "strip_think")
# Counts a tools-mode outcome carries (medbench.agent.tools_loop.ToolsOutcome).
TOOLS_COUNTS = ("tool_errors", "reminders")


def record_key(record: dict[str, Any]) -> RecordKey:
    """The identity of a line: a task and which of its repeated attempts (1-based)."""
    return (str(record["task_id"]), int(record.get("attempt", 1)))


def transcript_id(session: str, task_id: str, attempt: int) -> str:
    """Joins a runs.jsonl line to its transcripts.jsonl line, even across resumed sessions."""
    return f"{session}:{task_id}:{attempt}"


def parsed_result(raw: str | None) -> Any:
    """The FINISH answer as upstream stores it: parsed JSON when it parses, else the raw text.

    JSON nested deeper than `jsonsafe.MAX_DEPTH` is kept as its raw text, so that writing the
    record can never overflow the recursion limit (a 5,000-deep `FINISH([[[...` must be recorded too).
    """
    if raw is None:
        return None
    parses, parsed = parse_shallow(raw)
    return parsed if parses else raw


def run_record(
    *,
    index: int,
    category: int,
    attempt: int,
    session: str,
    outcome: TaskOutcome,
    verdict: Verdict,
    elapsed_s: float,
    environment_fingerprint: str,
    finished_at: datetime | None = None,
    modes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The runs.jsonl line for one graded attempt; `modes` (protocol, grader, ...) is written on every
    line when given, and a tools-mode outcome adds its `tool_errors` and `reminders` counts.

    `latency_s` is the time spent in model calls, retries and waits included, `time_lost_s` the
    part that produced no answer; an incorrect attempt whose last answer was cut by the token cap
    says so in `reason` (its status stays what the agent loop decided, as upstream)."""
    finished = finished_at or datetime.now(timezone.utc)
    finish_reason = getattr(outcome, "finish_reason", None)
    reason = None if verdict.correct else _text(verdict.reason)
    if reason is not None and finish_reason == TRUNCATED:
        reason = f"{reason}; {TRUNCATION_NOTE}"
    record = {
        "index": int(index),
        "task_id": str(outcome.task_id),
        "status": str(outcome.status),
        "correct": bool(verdict.correct),
        "result": _primitive(parsed_result(outcome.result)),
        "num_turns": int(outcome.num_turns),
        "time": finished.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        "category": f"task{int(category)}",
        "attempt": int(attempt),
        "reason": reason,
        "result_raw": _text(outcome.result),
        "error": _text(outcome.error),
        "error_source": getattr(outcome, "error_source", None),
        "prompt_tokens": _count(outcome.prompt_tokens),
        "completion_tokens": _count(outcome.completion_tokens),
        "latency_s": round(float(outcome.model_latency_s), 3),
        "model_calls": int(outcome.model_calls),
        "retries": int(outcome.retries),
        "refused_requests": int(getattr(outcome, "refused_requests", 0)),
        "timeouts": int(getattr(outcome, "timeouts", 0)),
        "time_lost_s": round(float(getattr(outcome, "time_lost_s", 0.0)), 3),
        "finish_reason": _text(finish_reason),
        "truncated_answers": int(getattr(outcome, "truncated_answers", 0)),
        "elapsed_s": round(float(elapsed_s), 3),
        "finished_at": finished.isoformat(timespec="seconds"),
        "session": str(session),
        "environment_fingerprint": str(environment_fingerprint),
        "transcript_id": transcript_id(session, outcome.task_id, attempt),
    }
    for key in TOOLS_COUNTS:
        value = getattr(outcome, key, None)
        if value is not None:
            record[key] = int(value)
    if modes is not None:
        record["modes"] = _primitive(modes)
    return record


def v2_modes(settings: Any, task_set: Any, run_started: datetime | None) -> dict[str, Any]:
    """What a MedAgentBench v2 run decided beyond the common modes (recorded on every line and in the summary)."""
    official = getattr(task_set, "flavour", None) == "official"
    return {
        "benchmark": "v2",
        "v2_api": "chat.completions, native tool calls (11 tools, upstream names and parameters)",
        "v2_max_steps": settings.max_rounds,
        "v2_creates": "executed against the EHR in the attempt's own write namespace",
        "v2_tool_errors": "answered to the model as 'Unknown tool: ...' / 'Tool error: ...' (upstream's chat runner)",
        "v2_calculator": "ast-based arithmetic evaluator (never eval)",
        "v2_system_prompt": "upstream new_system.txt, byte for byte"
        if official
        else "ours (medbench/data/v2_system_prompt.txt)",
        "v2_seating": _v2_seating(settings, task_set),
        "v2_task1_anchor": "the task's now"
        if settings.grader != "official"
        else run_started.isoformat(timespec="seconds")
        if run_started
        else "the run's start",
    }


def _v2_seating(settings: Any, task_set: Any) -> str:
    """Which seating the run's EHR used (`external` for a server of the user's)."""
    if getattr(settings, "fhir_url", None):
        return "external"
    from medbench.ehr.v2.seating import v2_embedded_seating, v2_seating_label

    return v2_seating_label(v2_embedded_seating(settings.tasks, task_set.tasks))


def run_modes(settings: Any) -> dict[str, Any]:
    """The modes a line was measured under (the summary's `modes`), from `medbench.settings.Settings`."""
    return {key: getattr(settings, key) for key in MODE_KEYS}


def transcript_record(run: dict[str, Any], outcome: TaskOutcome) -> dict[str, Any]:
    """The transcripts.jsonl line: the full conversation, kept out of runs.jsonl and the terminal."""
    record = {
        "transcript_id": run["transcript_id"],
        "task_id": run["task_id"],
        "attempt": run["attempt"],
        "session": run["session"],
        "status": run["status"],
        "correct": run["correct"],
        "history": [
            {"role": str(turn["role"]), "content": valid_text(str(turn["content"]))} for turn in outcome.history
        ],
        "calls": _primitive(list(getattr(outcome, "calls", []))),
        "refused_requests": int(getattr(outcome, "refused_requests", 0)),
    }
    messages = getattr(outcome, "messages", None)
    if messages is not None:
        # Tools mode: `history` is the graders' view; `messages` the conversation as the endpoint saw it.
        record["protocol"] = str(getattr(outcome, "protocol", "tools"))
        record["messages"] = _primitive(messages)
    return record


def report_properties(run: dict[str, Any]) -> list[tuple[str, Any]]:
    """The short per-test metadata for pytest reports (user_properties, json-report)."""
    keys = (
        "task_id",
        "attempt",
        "status",
        "correct",
        "reason",
        "num_turns",
        "prompt_tokens",
        "completion_tokens",
        "latency_s",
        "elapsed_s",
    )
    return [(key, run[key]) for key in keys]


def verdict_message(run: dict[str, Any]) -> str:
    """The one-line assertion message of an incorrect attempt: why, and the status, no transcript."""
    return f"{run['task_id']} incorrect: {failure_reason(run)} (status {run['status']}, {run['num_turns']} turns)"


def failure_reason(run: dict[str, Any]) -> str:
    """Why an attempt is incorrect, shortened to one line: the grader's reason, and for an attempt
    that ended without an answer (error, invalid action, context limit, cassette mismatch) what
    went wrong, e.g. `error: model call failed after 6 retries: HTTP 503: ...`."""
    reason = " ".join(str(run.get("reason") or "incorrect").split())
    error = run.get("error")
    if error and run.get("status") != COMPLETED:
        head, sep, rest = reason.partition(";")
        reason = f"{head}: {_shorten(error, ERROR_CHARS_SHOWN)}{sep}{rest}"
    return _shorten(reason, REASON_CHARS_SHOWN)


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _count(value: int | None) -> int | None:
    """Token counts stay None when the endpoint reported no usage (unknown is not zero)."""
    return None if value is None else int(value)


def _text(value: str | None) -> str | None:
    """Text as stored: lone surrogates (not encodable as UTF-8) become U+FFFD."""
    return None if value is None else valid_text(str(value))


def _primitive(value: Any) -> Any:
    """JSON round trip, so whatever the model answered is stored as plain, UTF-8-encodable JSON values."""
    return json_safe(json.loads(json.dumps(value, default=str)))
