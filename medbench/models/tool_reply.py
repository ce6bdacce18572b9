"""A model answer in tools mode: text plus the tool calls it asked for, read from a chat completion.

Kept apart from `medbench.models.client` so the text protocol's `ModelReply` stays as it is; the
client's `complete_with_tools` returns a `ToolReply`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolCall:
    """One function call: `arguments` is the raw text the model wrote (it may not be JSON)."""

    id: str
    name: str
    arguments: str

    def to_message(self) -> dict[str, Any]:
        """The call as it goes back to the endpoint inside the assistant message."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ToolReply:
    """One answer in tools mode; tokens are None when the endpoint reports no usage."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    retries: int
    finish_reason: str | None = None
    lost_s: float = 0.0
    timeouts: int = 0


class ToolChatModel(Protocol):
    def complete_with_tools(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ToolReply:
        """Answer a conversation (user, assistant with tool_calls, tool messages) given OpenAI `tools`."""
        ...


def read_tool_reply(
    choice: Any, usage: Any, latency_s: float, retries: int, *, lost_s: float = 0.0, timeouts: int = 0
) -> ToolReply:
    """The ToolReply of one completion choice (SDK objects or plain dicts alike).

    A call without an id (some servers omit it) gets `call_<n>` so that its tool message can
    still answer it; a call with no function name keeps the empty name, which the loop answers
    as an unknown tool.
    """
    message = _get(choice, "message")
    calls = []
    for index, call in enumerate(_get(message, "tool_calls") or []):
        function = _get(call, "function")
        calls.append(
            ToolCall(
                id=str(_get(call, "id") or f"call_{index}"),
                name=str(_get(function, "name") or ""),
                arguments=_arguments_text(_get(function, "arguments")),
            )
        )
    return ToolReply(
        content=_get(message, "content") or "",
        tool_calls=tuple(calls),
        prompt_tokens=_get(usage, "prompt_tokens"),
        completion_tokens=_get(usage, "completion_tokens"),
        latency_s=latency_s,
        retries=retries,
        finish_reason=_get(choice, "finish_reason"),
        lost_s=lost_s,
        timeouts=timeouts,
    )


def _arguments_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)  # a server that sends parsed arguments: give the loop the JSON text


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)
