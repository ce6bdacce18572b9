"""What medbench says to an A2A agent under test, and how it reads the answer.

The conventions are the public MedAgentBench evaluators' (AgentBeats, Agentify-MedAgentBench),
so an agent written for them runs here unchanged:

- one message per attempt, in a new conversation (no context or task id), role `user`;
- a text part: the task prompt (context, question, the FHIR base the tools' URLs use, the rule
  to end with `FINISH([...])`);
- a data part `{"mcp_server_url": <base URL of the attempt's MCP endpoint, without /mcp>,
  "max_iterations": <--max-rounds>, "max_tool_calls": <the cap>}`: agents append `/mcp`.

The answer: the agent's `finish` tool call if it made one, else the first balanced
`FINISH(...)` whose inside parses as a JSON list, in the final message or task (status message
and artifacts, text parts joined by newlines; code fences removed).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from medbench.package_data import read_text
from medbench.tasks.task import Task

PROMPT_FILE = "prompt_a2a.txt"
MCP_URL_KEY = "mcp_server_url"
MAX_ITERATIONS_KEY = "max_iterations"
MAX_TOOL_CALLS_KEY = "max_tool_calls"
FINISH_OPEN = "FINISH("
_FENCE = re.compile(r"```[a-zA-Z_]*")


def a2a_prompt(task: Task, api_base: str) -> str:
    """The text part of an attempt's message (medbench/data/prompt_a2a.txt, ours, for every task set)."""
    return _template().format(api_base=api_base, context=task.context, question=task.instruction)


def task_data(mcp_url: str, max_iterations: int, max_tool_calls: int) -> dict[str, Any]:
    """The data part: where the attempt's tools are and how many rounds and calls it may use."""
    return {MCP_URL_KEY: mcp_url, MAX_ITERATIONS_KEY: max_iterations, MAX_TOOL_CALLS_KEY: max_tool_calls}


@dataclass
class AgentReply:
    """The agent's final event: a task `state` (`completed`, `failed`, ...; a plain message counts as
    `completed`), the text of its parts and the last data part."""

    state: str
    text: str
    data: dict[str, Any] | None = None
    kind: str = "task"
    raw: dict[str, Any] = field(default_factory=dict)


def reply_from_event(event: Any) -> AgentReply:
    """Read a2a-sdk 0.3's last client event: a `Message`, or a `(Task, update)` tuple."""
    if isinstance(event, tuple):
        event = event[0]
    dumped = event.model_dump(mode="json", exclude_none=True)
    kind = dumped.get("kind", "")
    if kind == "message":
        texts, data = _parts(dumped.get("parts", []))
        return AgentReply("completed", "\n".join(texts), data, "message", dumped)
    status = dumped.get("status", {})
    texts, data = _parts((status.get("message") or {}).get("parts", []))
    for artifact in dumped.get("artifacts", []) or []:
        more_texts, more_data = _parts(artifact.get("parts", []))
        texts += more_texts
        data = more_data if more_data is not None else data
    return AgentReply(str(status.get("state", "unknown")), "\n".join(texts), data, "task", dumped)


def finish_answer(text: str) -> str | None:
    """The list inside the first balanced `FINISH(...)` that parses as a JSON list, as JSON text; else None."""
    cleaned = _FENCE.sub("", text)
    start = cleaned.find(FINISH_OPEN)
    while start >= 0:
        inside = _balanced(cleaned, start + len(FINISH_OPEN))
        if inside is not None:
            try:
                answers = json.loads(inside)
            except (ValueError, RecursionError):
                answers = None
            if isinstance(answers, list):
                return json.dumps(answers, ensure_ascii=False)
        start = cleaned.find(FINISH_OPEN, start + 1)
    return None


def _balanced(text: str, begin: int) -> str | None:
    depth, quoted, escaped = 1, False, False
    for index in range(begin, len(text)):
        char = text[index]
        if quoted:
            escaped = not escaped and char == "\\"
            if char == '"' and not escaped:
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[begin:index]
    return None


def _parts(parts: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any] | None]:
    texts, data = [], None
    for part in parts:
        if part.get("kind") == "text":
            texts.append(str(part.get("text", "")))
        elif part.get("kind") == "data" and isinstance(part.get("data"), dict):
            data = part["data"]
    return texts, data


@functools.lru_cache(maxsize=1)
def _template() -> str:
    return read_text(PROMPT_FILE).removesuffix("\n")
