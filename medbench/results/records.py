"""One task's outcome and verdict turned into the lines of runs.jsonl and transcripts.jsonl.

Field names follow the upstream runs.jsonl (index, task_id, status, correct, result,
num_turns, time); everything else is added beside them, never renamed. Values are JSON
primitives only, because the same data travels to the xdist controller and to
pytest-json-report, where anything else crashes a worker or is silently dropped.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Protocol

RUNS_FILE = "runs.jsonl"
TRANSCRIPTS_FILE = "transcripts.jsonl"

# Statuses that say the harness, not the model, failed: they never count as a model's verdict.
INFRASTRUCTURE_STATUSES = frozenset({"error", "cassette_mismatch"})

RecordKey = tuple[str, int]
# The run's modes, as summary.json `modes` names them (also written on each runs.jsonl line).
MODE_KEYS = ("protocol", "grader", "post_mode", "max_rounds", "strip_think")
# Counts a tools-mode outcome carries (medbench.agent.tools_loop.ToolsOutcome).
TOOLS_COUNTS = ("tool_errors", "reminders")


class OutcomeLike(Protocol):
    """What records read from an agent-loop outcome (medbench.agent.loop.TaskOutcome)."""

    @property
    def task_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> str | None: ...
    @property
    def history(self) -> list[dict[str, str]]: ...
    @property
    def num_turns(self) -> int: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def model_latency_s(self) -> float: ...
    @property
    def model_calls(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def error(self) -> str | None: ...


class VerdictLike(Protocol):
    """What records read from a grader verdict (medbench.grading.checks.Verdict)."""

    @property
    def correct(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...


def record_key(record: dict[str, Any]) -> RecordKey:
    """The identity of a line: a task and which of its repeated attempts (1-based)."""
    return (str(record["task_id"]), int(record.get("attempt", 1)))


def transcript_id(session: str, task_id: str, attempt: int) -> str:
    """Joins a runs.jsonl line to its transcripts.jsonl line, even across resumed sessions."""
    return f"{session}:{task_id}:{attempt}"


def parsed_result(raw: str | None) -> Any:
    """The FINISH answer as upstream stores it: parsed JSON when it parses, else the raw text."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def run_record(
    *,
    index: int,
    category: int,
    attempt: int,
    session: str,
    outcome: OutcomeLike,
    verdict: VerdictLike,
    elapsed_s: float,
    environment_fingerprint: str,
    finished_at: datetime | None = None,
    modes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The runs.jsonl line for one graded attempt; `modes` (protocol, grader, ...) is written on every
    line when given, and a tools-mode outcome adds its `tool_errors` and `reminders` counts."""
    finished = finished_at or datetime.now(timezone.utc)
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
        "reason": None if verdict.correct else _text(verdict.reason),
        "result_raw": _text(outcome.result),
        "error": _text(outcome.error),
        "prompt_tokens": _count(outcome.prompt_tokens),
        "completion_tokens": _count(outcome.completion_tokens),
        "latency_s": round(float(outcome.model_latency_s), 3),
        "model_calls": int(outcome.model_calls),
        "retries": int(outcome.retries),
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


def run_modes(settings: Any) -> dict[str, Any]:
    """The modes a line was measured under (the summary's `modes`), from `medbench.settings.Settings`."""
    return {key: getattr(settings, key) for key in MODE_KEYS}


def transcript_record(run: dict[str, Any], outcome: OutcomeLike) -> dict[str, Any]:
    """The transcripts.jsonl line: the full conversation, kept out of runs.jsonl and the terminal."""
    record = {
        "transcript_id": run["transcript_id"],
        "task_id": run["task_id"],
        "attempt": run["attempt"],
        "session": run["session"],
        "status": run["status"],
        "correct": run["correct"],
        "history": [{"role": str(turn["role"]), "content": str(turn["content"])} for turn in outcome.history],
        "calls": _primitive(list(getattr(outcome, "calls", []))),
    }
    messages = getattr(outcome, "messages", None)
    if messages is not None:
        # Tools mode: `history` is the graders' view; `messages` the conversation as the endpoint saw it.
        record["protocol"] = str(getattr(outcome, "protocol", "tools"))
        record["messages"] = _primitive(messages)
    return record


def report_properties(run: dict[str, Any]) -> list[tuple[str, Any]]:
    """The short per-test metadata for pytest reports (user_properties, json-report)."""
    keys = ("task_id", "attempt", "status", "correct", "reason", "num_turns", "prompt_tokens",
            "completion_tokens", "latency_s", "elapsed_s")
    return [(key, run[key]) for key in keys]


def verdict_message(run: dict[str, Any]) -> str:
    """The one-line assertion message of an incorrect attempt: grader reason and status, no transcript."""
    reason = run.get("reason") or "incorrect"
    if len(reason) > 300:
        reason = reason[:297] + "..."
    return f"{run['task_id']} incorrect: {reason} (status {run['status']}, {run['num_turns']} turns)"


def _count(value: int | None) -> int | None:
    """Token counts stay None when the endpoint reported no usage (unknown is not zero)."""
    return None if value is None else int(value)


def _text(value: str | None) -> str | None:
    return None if value is None else str(value)


def _primitive(value: Any) -> Any:
    """JSON round trip, so whatever the model answered is stored as plain JSON values."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))
