"""One attempt's tools: the tools-mode catalog, run through the attempt's own gateway, with its call log.

An MCP client (an agent under test, or a person's assistant) calls tools by name with JSON
arguments; each call is checked and run exactly as a tools-mode call is
(`medbench.agent.tools_loop.run_call`): the URL policy, the write namespace, the POST
validation and the accounting are the gateway's and the catalog's, unchanged. The endpoint adds
what an agent that brings its own loop needs watching for: a cap on tool calls (a flood ends in
`limit_reached`, never in a hang), nothing after `finish`, and nothing once the attempt is over.

`history` is the graders' view, written as in tools mode, so every grader applies as it is.
`received` is every call in arrival order (name and arguments): a replay feeds it back through
a fresh endpoint whose FHIR traffic plays from the attempt's cassette.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from medbench.agent.loop import LoopConfig
from medbench.agent.tools import ToolSet
from medbench.agent.tools_loop import run_call
from medbench.environment.gateway import FhirGateway
from medbench.models.tool_reply import ToolCall

TOKEN_BYTES = 24
FINISHED_REPLY = "Your answers are recorded; the task is over."
RECORDED_REPLY = "Answers recorded: {answers}"
OVER_REPLY = "Error: this task attempt is over; no further tool call runs."
AFTER_FINISH_REPLY = "Error: finish was already called; no further tool call runs."
LIMIT_REPLY = "Error: the limit of {limit} tool calls per task is reached; no further tool call runs."


def new_token() -> str:
    """An unguessable path segment: the only way to reach one attempt's endpoint."""
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True)
class ToolResult:
    """What a call answers: the tool message text, and whether it is an error the caller can correct."""

    text: str
    is_error: bool


class ToolEndpoint:
    """The tools of one attempt (or of one standalone server); thread-safe, calls run one at a time."""

    def __init__(
        self,
        toolset: ToolSet,
        gateway: FhirGateway,
        config: LoopConfig,
        *,
        max_tool_calls: int | None = None,
        prompt: str | None = None,
        ends_on_finish: bool = True,
        token: str | None = None,
    ) -> None:
        self.token = token or new_token()
        self.toolset = toolset
        self.gateway = gateway
        self.config = config
        self.max_tool_calls = max_tool_calls
        self.ends_on_finish = ends_on_finish
        self.history: list[dict[str, str]] = [{"role": "user", "content": prompt}] if prompt is not None else []
        self.calls: list[dict[str, Any]] = []  # the calls that ran: tool, arguments, failed
        self.received: list[dict[str, Any]] = []  # every call as it arrived (capped), for replay
        self.answer: str | None = None
        self.limit_reached = False
        self.tool_errors = 0
        self.refused_requests = 0
        self.rejected_calls = 0  # calls refused without running (over the cap, after finish, after the end)
        self._closed = False
        self._lock = threading.Lock()

    def call(self, name: str, arguments: Any) -> ToolResult:
        """Run one call; every problem is an answer (`is_error`), never an exception."""
        with self._lock:
            if self._closed:
                self.rejected_calls += 1
                return ToolResult(OVER_REPLY, True)
            self._remember(name, arguments)
            if self.answer is not None and self.ends_on_finish:
                self.rejected_calls += 1
                return ToolResult(AFTER_FINISH_REPLY, True)
            if self.max_tool_calls is not None and len(self.calls) >= self.max_tool_calls:
                self.limit_reached = True
                self.rejected_calls += 1
                return ToolResult(LIMIT_REPLY.format(limit=self.max_tool_calls), True)
            text = (
                arguments
                if isinstance(arguments, str)
                else json.dumps({} if arguments is None else arguments, ensure_ascii=False)
            )
            step = run_call(
                ToolCall(id=f"call_{len(self.calls) + 1}", name=str(name), arguments=text),
                self.toolset,
                self.gateway,
                self.config,
            )
            result = (
                step.content
                if step.finished is None
                else (FINISHED_REPLY if self.ends_on_finish else RECORDED_REPLY.format(answers=step.finished))
            )
            self.calls.append({"tool": str(name), "arguments": arguments, "failed": step.failed, "result": result})
            self.history.extend(step.view)
            self.tool_errors += step.failed
            self.refused_requests += step.refused
            if step.finished is not None:
                self.answer = step.finished
            return ToolResult(result, step.failed)

    def close(self) -> None:
        """The attempt ended: from now on every call is refused (a late or flooding agent changes nothing)."""
        with self._lock:
            self._closed = True

    def _remember(self, name: str, arguments: Any) -> None:
        cap = (self.max_tool_calls or 0) + 2
        if self.max_tool_calls is None or len(self.received) < cap:
            self.received.append({"tool": str(name), "arguments": arguments})
