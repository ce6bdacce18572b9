"""Chat models the agent loop talks to, and the OpenAI-compatible client for real endpoints.

The SDK's own retries are off: we retry 429 / 5xx / timeouts / dropped connections / truncated
response bodies ourselves, within bounds (a number of retries, at most `timeout_retries`
timeouts, and a time budget), with exponential backoff and jitter, so that retries are counted
per task, reported while they happen (`call_events`) and never hang a run. Context-window
overflow is told apart from other failures because the benchmark scores it as its own status.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from medbench.models import call_events
from medbench.models.call_events import CallEvent
from medbench.models.context_limit import context_tokens, looks_like_context_limit
from medbench.models.replicas import ReplicaPool, ReplicaTransport
from medbench.models.tool_reply import ToolReply, read_tool_reply
from medbench.scrubbing import Scrubber

__all__ = [
    "ChatModel",
    "ContextLimitError",
    "ModelCallError",
    "ModelError",
    "ModelReply",
    "OpenAIChatModel",
    "PLACEHOLDER_API_KEY",
    "RETRYABLE_STATUSES",
    "looks_like_context_limit",
]

# Sent when neither an explicit key nor OPENAI_API_KEY is set: local endpoints accept anything.
PLACEHOLDER_API_KEY = "no-key"
# Error bodies can be whole HTML pages from proxies; messages keep the start.
MAX_ERROR_CHARS = 2000
RETRYABLE_STATUSES = frozenset({408, 409, 429})
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_RETRY_BUDGET_S = 300.0


@dataclass(frozen=True)
class ModelReply:
    """One answer. Tokens are None when the endpoint reports no usage; `latency_s` is the successful
    attempt's, `lost_s` the time the call spent before it (failed attempts and backoff waits);
    `finish_reason` is the endpoint's (`length`: cut by the token cap), None when not reported."""

    content: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    retries: int
    finish_reason: str | None = None
    lost_s: float = 0.0
    timeouts: int = 0


class ModelError(Exception):
    """A model call that gave no answer; carries the retries, timeouts and time it cost."""

    def __init__(self, message: str, *, retries: int = 0, latency_s: float = 0.0, timeouts: int = 0) -> None:
        super().__init__(message)
        self.retries = retries
        self.latency_s = latency_s
        self.timeouts = timeouts


class ContextLimitError(ModelError):
    """The endpoint says the conversation no longer fits the model's context window.

    `prompt_tokens` and `context_window` are what the error body reported (None when it did not)."""

    def __init__(
        self,
        message: str,
        *,
        retries: int = 0,
        latency_s: float = 0.0,
        timeouts: int = 0,
        prompt_tokens: int | None = None,
        context_window: int | None = None,
    ) -> None:
        super().__init__(message, retries=retries, latency_s=latency_s, timeouts=timeouts)
        self.prompt_tokens = prompt_tokens
        self.context_window = context_window


class ModelCallError(ModelError):
    """The endpoint failed and retrying did not help (or could not)."""


class ChatModel(Protocol):
    def complete(self, messages: list[dict[str, str]]) -> ModelReply:
        """Answer a conversation of {"role": "user"|"assistant", "content"} messages."""
        ...


@dataclass(frozen=True)
class _Completed:
    """A completion and what getting it cost: the answering attempt's latency, the time lost before it."""

    completion: Any
    latency_s: float
    lost_s: float
    retries: int
    timeouts: int


@dataclass(frozen=True)
class _Fault:
    """One failed attempt, as the retry policy sees it."""

    reason: str
    retryable: bool
    timed_out: bool = False


class OpenAIChatModel:
    """Chat completions over the official `openai` SDK against any OpenAI-compatible base URL.

    `timeout` bounds each attempt (connecting, and each wait for the next bytes of the answer);
    `max_retries` bounds the retries of one call, `timeout_retries` how many of them may follow a
    timeout, and `retry_budget_s` the time one call may spend retrying once its first attempt
    failed (waits and retried attempts; a retried attempt's timeout is cut to what is left).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        extra_headers: dict[str, str] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = 6,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        timeout_retries: int = 1,
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
    ) -> None:
        if timeout <= 0 or retry_budget_s < 0 or max_retries < 0 or timeout_retries < 0:
            raise ValueError("timeout must be positive; retry_budget_s, max_retries and timeout_retries not negative")
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.timeout_retries = timeout_retries
        self.retry_budget_s = retry_budget_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        secret = api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY
        headers = authorization_first(extra_headers or {})
        # An explicit `--extra-header Authorization=...` wins over the API key: the key is not sent
        # at all then (the SDK is given the placeholder), so exactly one Authorization header goes out.
        self.key_is_sent = "Authorization" not in headers
        # Error texts are scrubbed of the key and every header value (medbench.scrubbing).
        self._scrubber = Scrubber.of(secret if secret != PLACEHOLDER_API_KEY else None, headers)
        self._sampling: dict[str, Any] = {}
        if temperature is not None:
            self._sampling["temperature"] = temperature
        if max_tokens is not None:
            self._sampling["max_tokens"] = max_tokens
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=secret if self.key_is_sent else PLACEHOLDER_API_KEY,
            default_headers=headers or None,
            timeout=timeout,
            max_retries=0,
        )

    replicas: ReplicaPool | None = None  # set by `across`

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r})"

    def through(self, transport: Any) -> OpenAIChatModel:
        """The same model whose HTTP traffic goes through `transport` (one attempt's cassette)."""
        sibling = copy.copy(self)
        sibling._client = self._client.copy(http_client=openai.DefaultHttpxClient(transport=transport))
        return sibling

    def across(self, replicas: ReplicaPool) -> OpenAIChatModel:
        """The same model with its calls spread over replicas (`medbench.models.replicas`); `base_url`
        (the first replica) stays the URL the SDK and cassettes see."""
        sibling = self.through(ReplicaTransport(replicas, self.base_url))
        sibling.replicas = replicas
        return sibling

    def replica_transport(self) -> Any:
        """A transport that sends to the replicas (for an attempt's cassette to send through), or None."""
        return None if self.replicas is None else ReplicaTransport(self.replicas, self.base_url)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def complete(self, messages: list[dict[str, str]]) -> ModelReply:
        """One answer, retrying transient failures; raises ContextLimitError or ModelCallError."""
        call = self._create(messages=messages)
        return self._reply(call.completion, call.latency_s, call.lost_s, call.retries, call.timeouts)

    def complete_with_tools(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ToolReply:
        """One answer to a conversation with OpenAI `tools` (tool_choice left to the model): its text and
        tool calls. Retries, errors and accounting as `complete`; raises ContextLimitError or ModelCallError."""
        call = self._create(messages=messages, tools=tools)
        choices = getattr(call.completion, "choices", None)
        if not choices:
            raise ModelCallError(
                f"model endpoint answered without choices: {self._scrub(str(call.completion)[:500])}",
                retries=call.retries,
                latency_s=call.lost_s + call.latency_s,
                timeouts=call.timeouts,
            )
        return read_tool_reply(
            choices[0],
            getattr(call.completion, "usage", None),
            call.latency_s,
            call.retries,
            lost_s=call.lost_s,
            timeouts=call.timeouts,
        )

    def _create(self, **request: Any) -> _Completed:
        """One chat completion, retried as the policy allows (the one retry loop of both protocols)."""
        started = time.monotonic()
        retries = timeouts = 0
        deadline: float | None = None  # set when the first attempt fails: the retry budget runs from there
        while True:
            attempt_started = time.monotonic()
            attempt_timeout = self.timeout if deadline is None else min(self.timeout, deadline - attempt_started)
            try:
                completion = self._client.chat.completions.create(
                    model=self.model, timeout=attempt_timeout, **request, **self._sampling
                )
            except (openai.APIError, json.JSONDecodeError) as error:
                now = time.monotonic()
                fault = self._classify(error, attempt_timeout)
                timeouts += fault.timed_out
                if not fault.retryable:
                    raise self._final_error(error, retries, now - started, timeouts) from None
                if deadline is None:
                    deadline = now + self.retry_budget_s
                wait = self._backoff_s(retries, error)
                stop = self._stop_reason(retries, timeouts, now + wait, deadline)
                event = CallEvent(
                    call_events.RETRY if stop is None else call_events.GAVE_UP,
                    retries + 1,
                    fault.reason,
                    fault.timed_out,
                    now - started,
                    None if stop else wait,
                )
                call_events.emit(event)
                if stop is not None:
                    raise ModelCallError(
                        f"model call failed after {retries} retries{stop}: {fault.reason}",
                        retries=retries,
                        latency_s=now - started,
                        timeouts=timeouts,
                    ) from None
                time.sleep(wait)
                retries += 1
                continue
            ended = time.monotonic()
            return _Completed(completion, ended - attempt_started, attempt_started - started, retries, timeouts)

    def _stop_reason(self, retries: int, timeouts: int, next_start: float, deadline: float) -> str | None:
        """Why the call must not be retried again (a phrase for the error), or None to retry."""
        if retries >= self.max_retries:
            return ""
        if timeouts > self.timeout_retries:
            return f" (timed out {timeouts} times; at most {self.timeout_retries} timeout retries)"
        if next_start >= deadline:
            return f" (retry budget of {self.retry_budget_s:g} s spent)"
        return None

    def _reply(self, completion: Any, latency: float, lost: float, retries: int, timeouts: int) -> ModelReply:
        choices = getattr(completion, "choices", None)
        if not choices:
            raise ModelCallError(
                f"model endpoint answered without choices: {self._scrub(str(completion)[:500])}",
                retries=retries,
                latency_s=lost + latency,
                timeouts=timeouts,
            )
        usage = getattr(completion, "usage", None)
        return ModelReply(
            content=getattr(getattr(choices[0], "message", None), "content", None) or "",
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_s=latency,
            retries=retries,
            finish_reason=getattr(choices[0], "finish_reason", None),
            lost_s=lost,
            timeouts=timeouts,
        )

    def _classify(self, error: openai.APIError | json.JSONDecodeError, timeout: float) -> _Fault:
        if isinstance(error, json.JSONDecodeError):
            # A body cut mid-JSON (a dropped proxy stream) is as transient as a dropped connection.
            return _Fault(f"truncated or malformed response body (JSONDecodeError: {error})", retryable=True)
        if isinstance(error, openai.APITimeoutError):
            return _Fault(f"APITimeoutError: no answer within {timeout:.3g} s", retryable=True, timed_out=True)
        return _Fault(self._describe(error), retryable=_is_retryable(error))

    def _final_error(
        self, error: openai.APIError | json.JSONDecodeError, retries: int, elapsed: float, timeouts: int
    ) -> ModelError:
        assert isinstance(error, openai.APIError)  # every JSONDecodeError is retryable
        if _is_context_limit(error):
            tokens = context_tokens(_error_text(error))
            return ContextLimitError(
                self._describe(error),
                retries=retries,
                latency_s=elapsed,
                timeouts=timeouts,
                prompt_tokens=tokens.prompt_tokens,
                context_window=tokens.context_window,
            )
        return ModelCallError(
            f"model call failed: {self._describe(error)}", retries=retries, latency_s=elapsed, timeouts=timeouts
        )

    def _backoff_s(self, retries: int, error: openai.APIError | json.JSONDecodeError) -> float:
        """Exponential with jitter; a server's Retry-After wins when it asks for longer (capped)."""
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2**retries)
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        asked = _retry_after_s(error)
        if asked is not None:
            delay = max(delay, min(asked, self.backoff_max_s))
        return delay

    def _describe(self, error: openai.APIError) -> str:
        status = getattr(error, "status_code", None)
        kind = type(error).__name__ if status is None else f"HTTP {status}"
        return self._scrub(f"{kind}: {_error_text(error)[:MAX_ERROR_CHARS]}")

    def _scrub(self, text: str) -> str:
        """The API key and header values never appear in messages, even when an endpoint echoes them back."""
        return self._scrubber.text(text)


def authorization_first(headers: Mapping[str, str]) -> dict[str, str]:
    """Extra headers with any spelling of `authorization` renamed `Authorization` (the last one given wins),
    so it replaces the SDK's own `Authorization: Bearer <key>` instead of being sent beside it."""
    result: dict[str, str] = {}
    for name, value in headers.items():
        result["Authorization" if name.lower() == "authorization" else name] = value
    return result

    # --- tools mode (`--protocol=tools`); `complete` above is the text protocol's call -----------------


def _is_retryable(error: openai.APIError) -> bool:
    if isinstance(error, openai.APIConnectionError):
        return True
    if error.code == "insufficient_quota":
        # OpenAI sends this as a 429, but waiting does not bring the quota back.
        return False
    status = getattr(error, "status_code", None)
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


def _is_context_limit(error: openai.APIError) -> bool:
    return error.code == "context_length_exceeded" or looks_like_context_limit(_error_text(error))


def _error_text(error: openai.APIError) -> str:
    """The raw body of an HTTP error (what upstream's word rule reads), else the SDK's message
    (for a dropped connection, with the transport's own words: which side closed, and when)."""
    response = getattr(error, "response", None)
    if response is not None:
        try:
            body = response.text.strip()
        except Exception:
            body = ""
        if body:
            return body
    cause = error.__cause__
    if isinstance(error, openai.APIConnectionError) and cause is not None and str(cause):
        return f"{error} ({type(cause).__name__}: {cause})"
    return str(error)


def _retry_after_s(error: openai.APIError | json.JSONDecodeError) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None
