"""The built-in models in tools mode: they answer with `tool_calls` when the request carries `tools`.

The reference agent itself stays a text-protocol agent (`reference_agent.reference_reply`); this
module is its adapter, the way a function-calling wrapper sits around any model:

1. the tools conversation is read back as the text conversation it stands for: each tool call
   becomes the action its tool's name says (`search_*`, `get_next_page` -> GET; `create_*` ->
   POST; `finish` -> FINISH), each tool message the text protocol's reply;
2. the reference agent picks its next action from that;
3. the action becomes one call of a tool from the request's `tools`: a GET of a resource goes to
   the search tool of that resource whose required parameters it supplies (the one using most of
   its parameters), a `next` link to `get_next_page`, a POST to `create_<resource>` (else
   `create_resource`), FINISH to `finish`.

It only knows the tool names' conventions (medbench.agent.tools) and the tool schemas it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from medbench.agent.protocol import FINISH_PREFIX, GET_OK_PREFIX
from medbench.agent.tools import (
    CREATE_PREFIX,
    CREATE_RESOURCE,
    FINISH,
    NEXT_PAGE,
    SEARCH_PREFIX,
    create_tool_name,
    search_tool_name,
)
from medbench.models.builtin.baselines import TOOL_BASELINES
from medbench.models.builtin.reference_agent import reference_reply
from medbench.models.builtin.reference_facts import ReferenceAgentError, find_api_base

ToolCallSpec = tuple[str, dict[str, Any]]
ToolModel = Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[ToolCallSpec]]


def action_of_tool(name: str) -> str | None:
    """`GET`, `POST` or `FINISH`: the text-protocol action a tool stands for, by its name."""
    if name == FINISH:
        return "FINISH"
    if name == NEXT_PAGE or name.startswith(SEARCH_PREFIX):
        return "GET"
    if name.startswith(CREATE_PREFIX):
        return "POST"
    return None


def text_conversation(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The tools conversation as the text conversation it stands for (user/assistant turns only)."""
    turns: list[dict[str, str]] = []
    actions: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        if role == "user":
            turns.append({"role": "user", "content": _text(message)})
        elif role == "assistant":
            tool_calls = message.get("tool_calls") or []
            if not tool_calls:
                turns.append({"role": "assistant", "content": _text(message)})
            for call in tool_calls:
                name = str((call.get("function") or {}).get("name", ""))
                action = action_of_tool(name) or "CALL"
                actions[str(call.get("id"))] = action
                turns.append({"role": "assistant", "content": f"{action} {name}"})
        elif role == "tool":
            content = _text(message)
            if actions.get(str(message.get("tool_call_id"))) == "GET" and not content.startswith("Error"):
                content = GET_OK_PREFIX + content
            turns.append({"role": "user", "content": content})
    return turns


def tool_call_for(action: str, tools: Sequence[Mapping[str, Any]], api_base: str) -> ToolCallSpec:
    """The call of one of `tools` that does what a text-protocol action does."""
    specs = {str(t["function"]["name"]): t["function"] for t in tools if isinstance(t.get("function"), Mapping)}
    if action.startswith(FINISH_PREFIX):
        return _require(FINISH, specs), {"answers": json.loads(action[len(FINISH_PREFIX) : -1])}
    if action.startswith("POST"):
        first, _, body = action.partition("\n")
        resource = _resource(first[4:].strip(), api_base)
        payload = json.loads(body)
        if create_tool_name(resource) in specs:
            return create_tool_name(resource), payload
        return _require(CREATE_RESOURCE, specs), {"resource_type": resource, "resource": payload}
    if action.startswith("GET"):
        url = action[3:].strip()
        parts = urlsplit(url)
        if "_getpages" in parts.query:
            return _require(NEXT_PAGE, specs), {"url": url}
        return _search_call(_resource(url, api_base), dict(parse_qsl(parts.query, keep_blank_values=True)), specs)
    raise ReferenceAgentError(f"no tool for the action {action[:80]!r}")


def reference_tool_calls(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[ToolCallSpec]:
    """The reference model in tools mode: one call per turn, the action the text agent would take."""
    conversation = text_conversation(messages)
    if not conversation or conversation[0]["role"] != "user":
        raise ReferenceAgentError("the conversation must open with a user message holding the task")
    action = reference_reply(conversation)
    return [tool_call_for(action, tools, find_api_base(conversation[0]["content"]))]


TOOL_MODELS: dict[str, ToolModel] = {"reference": reference_tool_calls, **TOOL_BASELINES}


def _search_call(resource: str, parameters: dict[str, str], specs: Mapping[str, Any]) -> ToolCallSpec:
    base = search_tool_name(resource)
    fitting = []
    for name, spec in specs.items():
        if name != base and not name.startswith(base + "_"):
            continue
        schema = spec.get("parameters") or {}
        if set(schema.get("required", [])) <= set(parameters):
            fitting.append((len(set(schema.get("properties", {})) & set(parameters)), name))
    if not fitting:
        raise ReferenceAgentError(f"no search tool for {resource} takes the parameters {sorted(parameters)}")
    best = max(score for score, _ in fitting)
    name = next(name for score, name in fitting if score == best)
    return name, parameters


def _resource(url: str, api_base: str) -> str:
    path = url[len(api_base) :] if url.startswith(api_base) else urlsplit(url).path.rsplit("/", 1)[-1]
    return path.split("?", 1)[0].strip("/")


def _require(name: str, specs: Mapping[str, Any]) -> str:
    if name not in specs:
        raise ReferenceAgentError(f"the request's tools have no {name!r}")
    return name


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content if isinstance(content, str) else ""
