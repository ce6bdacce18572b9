"""The shared words of medbench, defined once: statuses, the outcome of an attempt, a grader's verdict.

Every room (agent loop, graders, results, reports, runner) imports these, so a status or a field
is spelled in one place. Plain data only: no I/O, no imports from the rest of medbench.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How an attempt ended: the upstream status words, plus one for replay mismatches.
COMPLETED = "completed"
INVALID_ACTION = "agent_invalid_action"
LIMIT_REACHED = "limit_reached"
CONTEXT_LIMIT = "context_limit"
ERROR = "error"
CASSETTE_MISMATCH = "cassette_mismatch"

ALL_STATUSES = (COMPLETED, INVALID_ACTION, LIMIT_REACHED, CONTEXT_LIMIT, ERROR, CASSETTE_MISMATCH)

# Statuses that say nothing about the model: they count as incorrect and fail every CI gate.
INFRASTRUCTURE_STATUSES = frozenset({ERROR, CASSETTE_MISMATCH})
# A finish_reason saying the answer was cut by the completion-token cap.
TRUNCATED = "length"


@dataclass(frozen=True)
class Verdict:
    """The grader's decision on one transcript; ``reason`` says why when it is incorrect."""

    correct: bool
    reason: str | None = None


@dataclass
class TaskOutcome:
    """How one task ended. `history` is the transcript graders read: the prompt, then raw agent
    answers and harness turns. Token totals are None when the endpoint never reported usage.
    `calls` has one JSON-ready record per model call (latency_s, lost_s, prompt/completion tokens,
    retries, timeouts, finish_reason). `model_latency_s` is the time spent in model calls, retries
    and their waits included; `time_lost_s` the part of it that produced no answer.
    `finish_reason` is the last answer's (`length`: cut by the token cap)."""

    task_id: str
    status: str
    result: str | None
    history: list[dict[str, str]]
    num_turns: int
    prompt_tokens: int | None
    completion_tokens: int | None
    model_latency_s: float
    model_calls: int
    retries: int
    error: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    # GET/POST urls the gateway refused to send (not under the FHIR base; medbench.environment.fhir_urls).
    refused_requests: int = 0
    # For status `error`: "model" when the model call failed (upstream's client gives up on the
    # sample, ungraded), "harness" when anything else raised (upstream's TASK_ERROR, graded).
    error_source: str | None = None
    timeouts: int = 0
    time_lost_s: float = 0.0
    finish_reason: str | None = None
    truncated_answers: int = 0

    @property
    def last_answer_truncated(self) -> bool:
        """The model's last answer was cut by the completion-token cap."""
        return self.finish_reason == TRUNCATED
