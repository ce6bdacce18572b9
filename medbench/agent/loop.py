"""The agent loop: one task, one conversation, one status, as the upstream harness runs it.

Read top to bottom: build the prompt, then for at most `max_rounds` rounds ask the model,
record its raw answer, parse it, and either end the task or append exactly one user turn.
Whatever happens, `run_task` returns a `TaskOutcome` with the transcript so far; it never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from vcr.errors import CannotOverwriteExistingCassetteException

from medbench import outcomes
from medbench.agent import protocol
from medbench.agent.prompt import build_prompt
from medbench.agent.protocol import FinishAction, GetAction, InvalidAction, PostAction
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.jsonsafe import valid_text
from medbench.models import call_events
from medbench.models.client import ChatModel, ContextLimitError, ModelError, ModelReply
from medbench.outcomes import TRUNCATED, TaskOutcome
from medbench.tasks.task import Task, TaskSet

# A model answer of either protocol (ModelReply, tool_reply.ToolReply): what logged_call records.
Reply = TypeVar("Reply", bound=Any)

POST_MODES = ("official", "execute")


@dataclass(frozen=True)
class LoopConfig:
    """`official` post-mode acknowledges POSTs without sending them (upstream); `execute` sends them."""

    max_rounds: int = 8
    post_mode: str = "official"
    strip_think: bool = False
    api_base: str = DEFAULT_DISPLAY_BASE

    def __post_init__(self) -> None:
        if self.post_mode not in POST_MODES:
            raise ValueError(f"post_mode must be one of {POST_MODES}, got {self.post_mode!r}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {self.max_rounds}")


def run_task(
    task: Task, task_set: TaskSet, model: ChatModel, gateway: FhirGateway, config: LoopConfig | None = None
) -> TaskOutcome:
    """Run one task to its end; every failure becomes a status, never an exception."""
    config = config or LoopConfig()
    history: list[dict[str, str]] = []
    calls: list[dict[str, Any]] = []
    refused = 0
    in_model_call = False

    def outcome(end: str, result: str | None = None, error: str | None = None) -> TaskOutcome:
        ended = outcome_of(task.id, end, result, error, history, calls)
        ended.refused_requests = refused
        if end == outcomes.ERROR:
            ended.error_source = "model" if in_model_call else "harness"
        return ended

    try:
        history.append({"role": "user", "content": build_prompt(task_set, task, config.api_base)})
        for _ in range(config.max_rounds):
            in_model_call = True
            reply = _ask(model, history, calls, task.id)
            in_model_call = False
            answer = protocol.strip_think(reply.content) if config.strip_think else reply.content
            history.append({"role": "agent", "content": answer})
            action = protocol.parse_action(answer)
            if isinstance(action, FinishAction):
                return outcome(outcomes.COMPLETED, result=action.result)
            if isinstance(action, InvalidAction):
                return outcome(outcomes.INVALID_ACTION, error=action.reason)
            turn, was_refused = _observe(action, gateway, config)
            refused += was_refused
            history.append({"role": "user", "content": turn})
        return outcome(outcomes.LIMIT_REACHED)
    except Exception as exc:
        ended, error = failure_status(exc)
        return outcome(ended, error=error)


def failure_status(exc: Exception) -> tuple[str, str]:
    """The status and error an exception ends an attempt with, in either protocol."""
    if isinstance(exc, ContextLimitError):
        return outcomes.CONTEXT_LIMIT, str(exc)
    if isinstance(exc, CannotOverwriteExistingCassetteException):
        return outcomes.CASSETTE_MISMATCH, str(exc)
    return outcomes.ERROR, f"{type(exc).__name__}: {exc}"


def to_messages(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """The whole transcript as chat messages: agent turns go as `assistant`, harness turns as `user`.

    Text that cannot be sent as UTF-8 (a lone surrogate the model produced) goes as U+FFFD;
    valid text goes byte for byte.
    """
    return [
        {"role": "assistant" if turn["role"] == "agent" else "user", "content": valid_text(turn["content"])}
        for turn in history
    ]


def _ask(model: ChatModel, history: list[dict[str, str]], calls: list[dict[str, Any]], task_id: str) -> ModelReply:
    """Call the model and log the call, including failed ones (their retries and time count too)."""
    return logged_call(lambda: model.complete(to_messages(history)), calls, task_id)


def logged_call(call: Callable[[], Reply], calls: list[dict[str, Any]], task_id: str) -> Reply:
    """Make one model call (either protocol) and append its record to `calls`, failed calls too.

    A failed call's whole time is lost; a context-limit error keeps the token counts its body reported."""
    started = time.monotonic()
    try:
        with call_events.for_task(task_id):
            reply = call()
    except Exception as exc:
        if isinstance(exc, ContextLimitError):
            calls.append(
                _call_record(
                    exc.latency_s,
                    exc.latency_s,
                    exc.prompt_tokens,
                    None,
                    exc.retries,
                    exc.timeouts,
                    None,
                    ok=False,
                    context_window=exc.context_window,
                )
            )
        elif isinstance(exc, ModelError):
            calls.append(
                _call_record(exc.latency_s, exc.latency_s, None, None, exc.retries, exc.timeouts, None, ok=False)
            )
        else:
            elapsed = time.monotonic() - started
            calls.append(_call_record(elapsed, elapsed, None, None, 0, 0, None, ok=False))
        raise
    calls.append(
        _call_record(
            reply.latency_s + reply.lost_s,
            reply.lost_s,
            reply.prompt_tokens,
            reply.completion_tokens,
            reply.retries,
            reply.timeouts,
            reply.finish_reason,
            ok=True,
        )
    )
    return reply


def _observe(action: GetAction | PostAction, gateway: FhirGateway, config: LoopConfig) -> tuple[str, bool]:
    """The user turn that answers a GET or POST, and whether the gateway refused the url."""
    if isinstance(action, GetAction):
        response = gateway.get(action.url)
        if response.ok:
            return protocol.get_ok_turn(response.text), False
        return protocol.get_error_turn(response.error_message or ""), response.refused
    if not action.valid:
        return protocol.POST_INVALID, False
    if config.post_mode == "execute":
        response = gateway.post(action.url, action.payload)
        if not response.ok:
            return protocol.post_error_turn(response.error_message or ""), response.refused
    return protocol.POST_ACCEPTED, False


def _call_record(
    latency_s: float,
    lost_s: float,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    retries: int,
    timeouts: int,
    finish_reason: str | None,
    *,
    ok: bool,
    context_window: int | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ok": ok,
        "latency_s": latency_s,
        "lost_s": lost_s,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "retries": retries,
        "timeouts": timeouts,
        "finish_reason": finish_reason,
    }
    if context_window is not None:
        record["context_window"] = context_window
    return record


def outcome_of(
    task_id: str,
    end: str,
    result: str | None,
    error: str | None,
    history: list[dict[str, str]],
    calls: list[dict[str, Any]],
) -> TaskOutcome:
    def total(key: str) -> int | None:
        reported = [call[key] for call in calls if call[key] is not None]
        return sum(reported) if reported else None

    answered = [call for call in calls if call["ok"]]

    return TaskOutcome(
        task_id=task_id,
        status=end,
        result=result,
        history=history,
        num_turns=sum(1 for turn in history if turn["role"] == "agent"),
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        model_latency_s=sum(call["latency_s"] for call in calls),
        model_calls=len(calls),
        retries=sum(call["retries"] for call in calls),
        error=error,
        calls=calls,
        timeouts=sum(call.get("timeouts", 0) for call in calls),
        time_lost_s=sum(call.get("lost_s", 0.0) for call in calls),
        finish_reason=answered[-1]["finish_reason"] if answered else None,
        truncated_answers=sum(1 for call in answered if call.get("finish_reason") == TRUNCATED),
    )
