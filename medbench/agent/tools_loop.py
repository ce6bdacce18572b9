"""The agent loop in tools mode: one task, one function-calling conversation, one status.

Read top to bottom like `medbench.agent.loop`: the opening user turn is our tools prompt; for at
most `max_rounds` model turns the model answers with tool calls, which run in the order given,
each answered by a `tool` message; `finish(answers)` ends the task.

- A reply without a tool call gets one reminder (a user message) per task; a second one ends the
  task as `agent_invalid_action`.
- A call to an unknown tool, with arguments that are not JSON, or with arguments that do not fit
  the tool's parameters is answered with an error the model can correct, and counted in
  `tool_errors`; the task goes on.
- Results read as in the text protocol: a GET's body exactly as the server sent it, errors in
  the text protocol's words.

Graders never see tool calls. Alongside the conversation the loop writes `history` the way a
text-protocol agent doing the same things would have written it -- `GET <url>`, `POST <url>` +
JSON payload, `FINISH(<answers as JSON>)`, each followed by the text protocol's own reply -- so
the official and corrected graders apply unchanged. Failed calls of a create_ tool appear there
as POSTs the harness did not accept (the text protocol's `Invalid POST request`), since the
official grader counts any POST the agent attempted; other failed calls sent nothing and do not
appear. Free text beside the calls (and any reasoning) is not an action and is left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from medbench import outcomes
from medbench.agent import protocol
from medbench.agent.loop import LoopConfig, failure_status, logged_call, outcome_of
from medbench.agent.tools import (
    CREATE,
    CREATE_ANY,
    END,
    NEXT,
    SEARCH,
    Tool,
    ToolSet,
    reply_text,
    search_url,
    tools_for,
    tools_prompt,
)
from medbench.environment.gateway import FhirGateway
from medbench.models.tool_reply import ToolCall, ToolChatModel, ToolReply
from medbench.outcomes import TaskOutcome
from medbench.tasks.task import Task, TaskSet

PROTOCOL = "tools"
REMINDERS_PER_TASK = 1


@dataclass
class ToolsOutcome(TaskOutcome):
    """A TaskOutcome whose `history` is the graders' view; `messages` is the conversation as sent
    (assistant tool calls, tool messages). `num_turns` counts model turns."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_errors: int = 0
    reminders: int = 0
    protocol: str = PROTOCOL


@dataclass
class _Step:
    """What one tool call gave: the tool message, the graders' view of it, and a finish answer."""

    content: str
    view: list[dict[str, str]] = field(default_factory=list)
    failed: bool = False
    finished: str | None = None
    refused: bool = False  # the gateway refused the URL (not under the FHIR base): nothing was sent


def run_tools_task(
    task: Task,
    task_set: TaskSet,
    model: ToolChatModel,
    gateway: FhirGateway,
    config: LoopConfig | None = None,
    tools: ToolSet | None = None,
) -> ToolsOutcome:
    """Run one task in tools mode to its end; every failure becomes a status, never an exception."""
    config = config or LoopConfig()
    prompt = tools_prompt(task, config.api_base)
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    history: list[dict[str, str]] = [{"role": "user", "content": prompt}]
    calls: list[dict[str, Any]] = []
    counts = {"turns": 0, "tool_errors": 0, "reminders": 0, "refused": 0}

    in_model_call = False

    def outcome(end: str, result: str | None = None, error: str | None = None) -> ToolsOutcome:
        ended = _outcome(task.id, end, result, error, history, messages, calls, counts)
        ended.refused_requests = counts["refused"]
        if end == outcomes.ERROR:
            ended.error_source = "model" if in_model_call else "harness"
        return ended

    try:
        if not callable(getattr(model, "complete_with_tools", None)):
            raise TypeError(f"{model!r} cannot call tools (it has no complete_with_tools); run it with --protocol=text")
        toolset = tools or tools_for(task_set)
        specs = toolset.specs()
        for _ in range(config.max_rounds):
            in_model_call = True
            reply = _ask(model, messages, specs, calls, task.id)
            in_model_call = False
            counts["turns"] += 1
            content = protocol.strip_think(reply.content) if config.strip_think else reply.content
            if not reply.tool_calls:
                messages.append({"role": "assistant", "content": content})
                if counts["reminders"] >= REMINDERS_PER_TASK:
                    return outcome(
                        outcomes.INVALID_ACTION, error=f"reply without a tool call after a reminder: {content[:60]!r}"
                    )
                counts["reminders"] += 1
                messages.append({"role": "user", "content": reply_text("reminder")})
                continue
            messages.append(
                {
                    "role": "assistant",
                    "content": content or None,
                    "tool_calls": [call.to_message() for call in reply.tool_calls],
                }
            )
            for call in reply.tool_calls:
                step = run_call(call, toolset, gateway, config)
                history.extend(step.view)
                if step.finished is not None:
                    return outcome(outcomes.COMPLETED, result=step.finished)
                counts["tool_errors"] += step.failed
                counts["refused"] += step.refused
                messages.append({"role": "tool", "tool_call_id": call.id, "content": step.content})
        return outcome(outcomes.LIMIT_REACHED)
    except Exception as exc:
        ended, error = failure_status(exc)
        return outcome(ended, error=error)


def run_call(call: ToolCall, toolset: ToolSet, gateway: FhirGateway, config: LoopConfig) -> _Step:
    """Check one call, then do what it stands for (the MCP server runs its calls here too: medbench.mcp)."""
    tool = toolset.get(call.name)
    if tool is None:
        return _Step(reply_text("unknown_tool", name=repr(call.name), names=", ".join(toolset.names)), failed=True)
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except (ValueError, RecursionError) as exc:
        return _rejected(tool, call.arguments, config, reply_text("invalid_json", name=tool.name, problem=str(exc)))
    problems = tool.argument_problems(arguments)
    if problems:
        text = json.dumps(arguments, ensure_ascii=False)
        message = reply_text("invalid_arguments", name=tool.name, problem="; ".join(problems))
        return _rejected(tool, text, config, message)
    if tool.kind == END:
        result = json.dumps(arguments["answers"], ensure_ascii=False)
        return _Step("", [_agent(f"{protocol.FINISH_PREFIX}{result})")], finished=result)
    if tool.kind in (SEARCH, NEXT):
        if tool.kind == NEXT:
            return _get(arguments["url"], arguments["url"], gateway)
        url = search_url(config.api_base, _resource(tool), arguments)
        # Shown as the text protocol's agent would write it: its `&_format=json` is added on sending.
        return _get(url, url.removesuffix(protocol.GET_SUFFIX), gateway)
    url, payload = _post_target(tool, arguments, config)
    return _post(url, payload, gateway, config)


def _get(url: str, shown: str, gateway: FhirGateway) -> _Step:
    response = gateway.get(url)
    if response.ok:
        return _Step(response.text, [_agent(f"GET {shown}"), _user(protocol.get_ok_turn(response.text))])
    error = protocol.get_error_turn(response.error_message or "")
    return _Step(error, [_agent(f"GET {shown}"), _user(error)], refused=response.refused)


def _post(url: str, payload: Any, gateway: FhirGateway, config: LoopConfig) -> _Step:
    """Official post-mode acknowledges without sending (upstream); execute sends it."""
    agent = _agent(f"POST {url}\n{json.dumps(payload, ensure_ascii=False)}")
    if config.post_mode == "execute":
        response = gateway.post(url, payload)
        if not response.ok:
            error = protocol.post_error_turn(response.error_message or "")
            return _Step(error, [agent, _user(error)], refused=response.refused)
    return _Step(reply_text("post_accepted"), [agent, _user(protocol.POST_ACCEPTED)])


def _rejected(tool: Tool, arguments_text: str, config: LoopConfig, message: str) -> _Step:
    """A call that cannot run; a create_ call still shows the graders an attempted, unaccepted POST."""
    view: list[dict[str, str]] = []
    if tool.kind in (CREATE, CREATE_ANY):
        target = config.api_base + (tool.resource or "")
        view = [_agent(f"POST {target}\n{arguments_text}"), _user(protocol.POST_INVALID)]
    return _Step(message, view, failed=True)


def _post_target(tool: Tool, arguments: dict[str, Any], config: LoopConfig) -> tuple[str, Any]:
    if tool.kind == CREATE_ANY:
        return config.api_base + str(arguments["resource_type"]), arguments["resource"]
    return config.api_base + _resource(tool), arguments


def _resource(tool: Tool) -> str:
    assert tool.resource is not None, f"tool {tool.name} has no resource"
    return tool.resource


def _agent(content: str) -> dict[str, str]:
    return {"role": "agent", "content": content}


def _user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def _ask(
    model: ToolChatModel,
    messages: list[dict[str, Any]],
    specs: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    task_id: str,
) -> ToolReply:
    """Call the model and log the call as the text protocol does, failed ones included."""
    reply = logged_call(lambda: model.complete_with_tools(messages, specs), calls, task_id)
    calls[-1]["tool_calls"] = len(reply.tool_calls)
    return reply


def _outcome(
    task_id: str,
    end: str,
    result: str | None,
    error: str | None,
    history: list[dict[str, str]],
    messages: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    counts: dict[str, int],
) -> ToolsOutcome:
    """The text protocol's accounting (tokens, latency, retries, timeouts, finish reasons), plus the tools counts."""
    base = outcome_of(task_id, end, result, error, history, calls)
    base.num_turns = counts["turns"]
    return ToolsOutcome(
        **vars(base), messages=messages, tool_errors=counts["tool_errors"], reminders=counts["reminders"]
    )
