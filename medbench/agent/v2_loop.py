"""The agent loop of MedAgentBench v2: native tool calls over Chat Completions, at most 8 steps.

Read top to bottom like `medbench.agent.loop`: the system prompt (the task set's presentation)
and upstream's user message open the conversation; each step is one model call; every tool
call in the answer runs in order and is answered by a `tool` message holding `str(result)`;
`finish` ends the attempt with its value. A step answered with no tool call ends the attempt
with the value `[]` (upstream's loop breaks there), and so does running out of steps; both are
graded, as upstream grades them.

Errors (an unknown tool, arguments that do not validate, a create the EHR refuses, a calculator
expression it does not evaluate) are answered to the model as `Unknown tool: <name>` /
`Tool error: <problem>`, as upstream's own Chat Completions runner does; upstream's Responses
runner instead ends the attempt there. Creates are really sent to the EHR, in the attempt's own
write namespace (the gateway carries it).

Alongside the conversation the loop writes `history` as upstream's wrapper does, for the
graders: every item has role `agent`; assistant text as is; a FHIR tool call as
`"<METHOD> <base><Resource>\n<json of the raw arguments>"`, then `"<METHOD> request accepted"`
when the tool returned; calculator and finish as `name(<repr of the arguments>)`.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from medbench import outcomes
from medbench.agent.calculator import CalculatorError, calculate
from medbench.agent.loop import LoopConfig, failure_status, logged_call, outcome_of
from medbench.agent.tools_loop import ToolsOutcome
from medbench.agent.v2_tools import CALCULATE, FINISH, SEARCH, V2Tool, tool_named, tool_specs, user_message
from medbench.environment.gateway import FhirGateway
from medbench.models.tool_reply import ToolCall, ToolChatModel, ToolReply
from medbench.tasks.task import Task, TaskSet

PROTOCOL = "v2-tools"
NO_VALUE = "[]"


@dataclass
class _Step:
    """What one tool call gave: the tool message, the wrapper's history items, a finish value."""

    content: str
    view: list[dict[str, str]] = field(default_factory=list)
    failed: bool = False
    finished: str | None = None
    refused: bool = False


def run_v2_task(
    task: Task, task_set: TaskSet, model: ToolChatModel, gateway: FhirGateway, config: LoopConfig | None = None
) -> ToolsOutcome:
    """Run one v2 task to its end; every failure becomes a status, never an exception."""
    config = config or LoopConfig(post_mode="execute")
    opening = user_message(task.instruction, task.context)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": task_set.prompt_template},
        {"role": "user", "content": opening},
    ]
    history: list[dict[str, str]] = []
    calls: list[dict[str, Any]] = []
    counts = {"turns": 0, "tool_errors": 0, "refused": 0}
    in_model_call = False

    def outcome(end: str, result: str | None = None, error: str | None = None) -> ToolsOutcome:
        base = outcome_of(task.id, end, result, error, history, calls)
        base.num_turns = counts["turns"]
        base.refused_requests = counts["refused"]
        if end == outcomes.ERROR:
            base.error_source = "model" if in_model_call else "harness"
        return ToolsOutcome(**vars(base), messages=messages, tool_errors=counts["tool_errors"], protocol=PROTOCOL)

    try:
        if not callable(getattr(model, "complete_with_tools", None)):
            raise TypeError(f"{model!r} cannot call tools (it has no complete_with_tools); v2 needs native tool calls")
        specs = [dict(spec) for spec in tool_specs()]
        for _ in range(config.max_rounds):
            in_model_call = True
            reply = _ask(model, messages, specs, calls, task.id)
            in_model_call = False
            counts["turns"] += 1
            if reply.content:
                history.append(_agent(reply.content))
            if not reply.tool_calls:
                messages.append({"role": "assistant", "content": reply.content})
                return outcome(
                    outcomes.INVALID_ACTION, result=NO_VALUE, error=f"reply without a tool call: {reply.content[:60]!r}"
                )
            messages.append(
                {
                    "role": "assistant",
                    "content": reply.content or None,
                    "tool_calls": [call.to_message() for call in reply.tool_calls],
                }
            )
            for call in reply.tool_calls:
                step = run_call(call, gateway, config.api_base)
                history.extend(step.view)
                counts["tool_errors"] += step.failed
                counts["refused"] += step.refused
                messages.append({"role": "tool", "tool_call_id": call.id, "content": step.content})
                if step.finished is not None:
                    return outcome(outcomes.COMPLETED, result=step.finished)
        return outcome(outcomes.LIMIT_REACHED, result=NO_VALUE)
    except Exception as exc:
        ended, error = failure_status(exc)
        return outcome(ended, error=error)


def run_call(call: ToolCall, gateway: FhirGateway, api_base: str) -> _Step:
    """Validate one call, then do what it stands for; problems are answered, never raised."""
    tool = tool_named(call.name)
    try:
        raw = json.loads(call.arguments) if call.arguments.strip() else {}
    except (ValueError, RecursionError) as exc:
        if tool is None:
            return _Step(f"Unknown tool: {call.name}", failed=True)
        return _Step(f"Tool error: the arguments are not JSON ({exc})", failed=True)
    if tool is None:
        # Upstream's wrapper logs an unmapped call as `name(args)` before the lookup fails.
        return _Step(f"Unknown tool: {call.name}", [_agent(f"{call.name}({raw!r})")], failed=True)
    view = _call_view(tool, raw, api_base)
    try:
        arguments = tool.arguments.model_validate(raw)
    except ValidationError as exc:
        return _Step(f"Tool error: {_validation_text(tool, exc)}", view, failed=True)
    if tool.kind == FINISH:
        value = arguments.model_dump()["value"]
        return _Step(str(value), view, finished=json.dumps(value))
    if tool.kind == CALCULATE:
        try:
            return _Step(calculate(arguments.model_dump()["expression"]), view)
        except CalculatorError as exc:
            return _Step(f"Tool error: {exc}", view, failed=True)
    if tool.kind == SEARCH:
        return _search(tool, arguments, gateway, api_base, view)
    return _create(tool, arguments, gateway, api_base, view)


def _search(
    tool: V2Tool, arguments: BaseModel, gateway: FhirGateway, api_base: str, view: list[dict[str, str]]
) -> _Step:
    """Upstream does not raise on a 4xx search: the error body goes to the model as any result."""
    response = gateway.get(tool.url(api_base, arguments))
    parsed = _json_or_none(response.text)
    if parsed is None:
        problem = response.error_message or f"the EHR answered with a body that is not JSON (status {response.status})"
        return _Step(f"Tool error: {problem}", view, failed=True, refused=response.refused)
    return _Step(str(parsed), [*view, _agent("GET request accepted")])


def _create(
    tool: V2Tool, arguments: BaseModel, gateway: FhirGateway, api_base: str, view: list[dict[str, str]]
) -> _Step:
    """The validated body is sent; a refused create is a tool error and leaves the POST unanswered."""
    response = gateway.post(tool.url(api_base, arguments), arguments.model_dump(exclude_none=True))
    if not response.ok:
        problem = response.error_message or f"status {response.status}"
        detail = _json_or_none(response.text)
        shown = f"{problem}: {detail}" if detail is not None else problem
        return _Step(f"Tool error: {shown}", view, failed=True, refused=response.refused)
    parsed = _json_or_none(response.text)
    return _Step(str(parsed if parsed is not None else response.text), [*view, _agent("POST request accepted")])


def _call_view(tool: V2Tool, raw: Any, api_base: str) -> list[dict[str, str]]:
    """The wrapper's history item for a call: the request line and raw arguments, or name(repr)."""
    if tool.method is not None and tool.resource is not None:
        return [_agent(f"{tool.method} {api_base}{tool.resource}\n{json.dumps(raw)}")]
    return [_agent(f"{tool.name}({raw!r})")]


def _validation_text(tool: V2Tool, error: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors()[:8]]
    return f"{len(error.errors())} validation error(s) for {tool.name}: " + "; ".join(problems)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def _agent(content: str) -> dict[str, str]:
    return {"role": "agent", "content": content}


def _ask(
    model: ToolChatModel,
    messages: list[dict[str, Any]],
    specs: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    task_id: str,
) -> ToolReply:
    reply = logged_call(lambda: model.complete_with_tools(messages, specs), calls, task_id)
    calls[-1]["tool_calls"] = len(reply.tool_calls)
    return reply


def parse_shown(text: str) -> Any:
    """Read back what a tool message showed (`str()` of JSON data): the built-in models use this."""
    return ast.literal_eval(text)
