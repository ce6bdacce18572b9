"""Chat models the agent loop talks to, and the OpenAI-compatible client for real endpoints.

The SDK's own retries are off: we retry 429 / 5xx / timeouts / connection errors ourselves, a
bounded number of times with exponential backoff and jitter, so that retries are counted per
task and never hang a run. Context-window overflow is told apart from other failures because
the benchmark scores it as its own status.
"""

from __future__ import annotations

import copy
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from medbench.models.tool_reply import ToolReply, read_tool_reply

# Sent when neither an explicit key nor OPENAI_API_KEY is set: local endpoints accept anything.
PLACEHOLDER_API_KEY = "no-key"
# Error bodies can be whole HTML pages from proxies; messages keep the start.
MAX_ERROR_CHARS = 2000
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# Upstream's context-limit rule: one word of each group, case-insensitive, as substrings.
CONTEXT_WORDS = ("prompt", "context", "tokens")
LIMIT_WORDS = ("limit", "exceed", "max", "long", "much", "many", "reach", "over", "up", "beyond")


@dataclass(frozen=True)
class ModelReply:
    """One answer; tokens are None when the endpoint reports no usage; latency of the successful attempt."""

    content: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    retries: int


class ModelError(Exception):
    """A model call that gave no answer; carries the retries and time it cost."""

    def __init__(self, message: str, *, retries: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(message)
        self.retries = retries
        self.latency_s = latency_s


class ContextLimitError(ModelError):
    """The endpoint says the conversation no longer fits the model's context window."""


class ModelCallError(ModelError):
    """The endpoint failed and retrying did not help (or could not)."""


class ChatModel(Protocol):
    def complete(self, messages: list[dict[str, str]]) -> ModelReply:
        """Answer a conversation of {"role": "user"|"assistant", "content"} messages."""
        ...


def looks_like_context_limit(text: str) -> bool:
    """Upstream's word rule; apply it only to non-retryable errors (it also matches 429 "tokens per min")."""
    lowered = text.lower()
    return any(w in lowered for w in CONTEXT_WORDS) and any(w in lowered for w in LIMIT_WORDS)


class OpenAIChatModel:
    """Chat completions over the official `openai` SDK against any OpenAI-compatible base URL."""

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        extra_headers: dict[str, str] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._secret = api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY
        self._sampling: dict[str, Any] = {}
        if temperature is not None:
            self._sampling["temperature"] = temperature
        if max_tokens is not None:
            self._sampling["max_tokens"] = max_tokens
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=self._secret,
            default_headers=extra_headers,
            timeout=timeout,
            max_retries=0,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r})"

    def through(self, transport: Any) -> OpenAIChatModel:
        """The same model whose HTTP traffic goes through `transport` (one attempt's cassette)."""
        sibling = copy.copy(self)
        sibling._client = self._client.copy(http_client=openai.DefaultHttpxClient(transport=transport))
        return sibling

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def complete(self, messages: list[dict[str, str]]) -> ModelReply:
        """One answer, retrying transient failures; raises ContextLimitError or ModelCallError."""
        started = time.monotonic()
        retries = 0
        while True:
            attempt_started = time.monotonic()
            try:
                completion = self._client.chat.completions.create(model=self.model, messages=messages, **self._sampling)
            except openai.APIError as error:
                elapsed = time.monotonic() - started
                if not _is_retryable(error):
                    raise self._final_error(error, retries, elapsed) from None
                if retries >= self.max_retries:
                    raise ModelCallError(
                        f"model call failed after {retries} retries: {self._describe(error)}",
                        retries=retries,
                        latency_s=elapsed,
                    ) from None
                time.sleep(self._backoff_s(retries, error))
                retries += 1
                continue
            latency = time.monotonic() - attempt_started
            return self._reply(completion, latency, retries, time.monotonic() - started)

    def _reply(self, completion: Any, latency: float, retries: int, elapsed: float) -> ModelReply:
        choices = getattr(completion, "choices", None)
        if not choices:
            raise ModelCallError(
                f"model endpoint answered without choices: {self._scrub(str(completion)[:500])}",
                retries=retries,
                latency_s=elapsed,
            )
        usage = getattr(completion, "usage", None)
        return ModelReply(
            content=choices[0].message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_s=latency,
            retries=retries,
        )

    def _final_error(self, error: openai.APIError, retries: int, elapsed: float) -> ModelError:
        if _is_context_limit(error):
            return ContextLimitError(self._describe(error), retries=retries, latency_s=elapsed)
        return ModelCallError(f"model call failed: {self._describe(error)}", retries=retries, latency_s=elapsed)

    def _backoff_s(self, retries: int, error: openai.APIError) -> float:
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
        """The API key never appears in messages, even when an endpoint echoes it back."""
        if self._secret and self._secret != PLACEHOLDER_API_KEY:
            text = text.replace(self._secret, "***")
        return text

    # --- tools mode (`--protocol=tools`); `complete` above is the text protocol's call -----------------

    def complete_with_tools(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ToolReply:
        """One answer to a conversation with OpenAI `tools` (tool_choice left to the model): its text and
        tool calls. Retries, errors and accounting as `complete`; raises ContextLimitError or ModelCallError."""
        started = time.monotonic()
        retries = 0
        while True:
            attempt_started = time.monotonic()
            try:
                completion = self._client.chat.completions.create(model=self.model, messages=messages, tools=tools,
                                                                  **self._sampling)
            except openai.APIError as error:
                elapsed = time.monotonic() - started
                if not _is_retryable(error):
                    raise self._final_error(error, retries, elapsed) from None
                if retries >= self.max_retries:
                    raise ModelCallError(f"model call failed after {retries} retries: {self._describe(error)}",
                                         retries=retries, latency_s=elapsed) from None
                time.sleep(self._backoff_s(retries, error))
                retries += 1
                continue
            choices = getattr(completion, "choices", None)
            if not choices:
                raise ModelCallError(
                    f"model endpoint answered without choices: {self._scrub(str(completion)[:500])}",
                    retries=retries, latency_s=time.monotonic() - started)
            return read_tool_reply(choices[0], getattr(completion, "usage", None),
                                   time.monotonic() - attempt_started, retries)


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
    """The raw body of an HTTP error (what upstream's word rule reads), else the SDK's message."""
    response = getattr(error, "response", None)
    if response is not None:
        try:
            body = response.text.strip()
        except Exception:
            body = ""
        if body:
            return body
    return str(error)


def _retry_after_s(error: openai.APIError) -> float | None:
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
