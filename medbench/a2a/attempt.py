"""One attempt of an A2A agent under test: its own MCP endpoint, one message, one status.

Read top to bottom like the other agent loops (`medbench.agent.loop`, `tools_loop`): open the
attempt's tool endpoint (its gateway, hence its write namespace; its call log; an unguessable
path no other attempt knows), send the agent the task, wait up to `--timeout` for the final
answer, close the endpoint (later calls are refused), and decide the status:

- the tool-call cap was hit (a flood, or an agent that never stops) -> `limit_reached`; so is
  an agent that says it ran out of rounds (`max_rounds_reached` in its data part);
- no answer in time, a failed or refused task, or a reply that is not A2A -> `error` whose
  source is `agent` (ungraded, as a model that never answered);
- an answer (a `finish` call, else `FINISH([...])` in the final reply) -> `completed`;
- a final reply without one -> `agent_invalid_action`.

The graders read `history`: the tool calls as tools mode writes them, then the answer as
`FINISH(...)`. The transcript keeps the exchange (`messages`, tools-mode shape) and the call log.

Recording keeps the A2A exchange and the FHIR traffic in the attempt's cassette, and the calls
the agent made, in order, beside it (`<test_id>.a2a.jsonl`: the MCP side of the exchange, which
a client-side recorder cannot see). A replay sends nothing to any agent: it feeds the recorded
calls through a fresh endpoint (FHIR answered by the cassette) and plays the agent's reply.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcr.errors import CannotOverwriteExistingCassetteException

from medbench import outcomes
from medbench.a2a.cassette import HIDDEN, A2ACassetteTransport
from medbench.a2a.client import A2AAgent
from medbench.a2a.messages import AgentReply, a2a_prompt, finish_answer, task_data
from medbench.agent import protocol
from medbench.agent.loop import LoopConfig
from medbench.agent.tools import tools_for
from medbench.environment.gateway import FhirGateway
from medbench.mcp.endpoint import ToolEndpoint
from medbench.outcomes import TaskOutcome
from medbench.scrubbing import Scrubber
from medbench.tasks.task import Task, TaskSet

PROTOCOL = "a2a"
EXCHANGE_SUFFIX = ".a2a.jsonl"
COMPLETED_STATE = "completed"
SHOWN_CHARS = 200


@dataclass
class A2AOutcome(TaskOutcome):
    """A TaskOutcome whose `history` is the graders' view; `messages` the exchange in tools-mode shape
    (the agent's tool calls and their results, then its final reply); `num_turns` counts tool calls."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_errors: int = 0
    reminders: int | None = None
    protocol: str = PROTOCOL
    exchange: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class A2ALimits:
    """`max_tool_calls` per attempt (default: one per round of --max-rounds); `timeout` for the whole attempt."""

    max_tool_calls: int
    timeout: float


def exchange_path(cassette_path: Path) -> Path:
    """Where the agent's tool calls of a recorded attempt are kept, beside its cassette."""
    return cassette_path.with_name(cassette_path.name.removesuffix(".json") + EXCHANGE_SUFFIX)


def run_a2a_task(
    task: Task,
    task_set: TaskSet,
    agent: A2AAgent,
    gateway: FhirGateway,
    config: LoopConfig,
    limits: A2ALimits,
    *,
    cassette: Any = None,
    replaying: bool = False,
) -> A2AOutcome:
    """Run one attempt to its end; every failure becomes a status, never an exception."""
    prompt = a2a_prompt(task, config.api_base)
    endpoint = ToolEndpoint(tools_for(task_set), gateway, config, max_tool_calls=limits.max_tool_calls, prompt=prompt)
    recorded = _load_exchange(cassette) if replaying else None
    host = None if replaying else agent.mcp_host()
    mcp_url = host.open(endpoint) if host is not None else HIDDEN
    data = task_data(mcp_url, config.max_rounds, limits.max_tool_calls)
    transport = A2ACassetteTransport(cassette.cassette, [mcp_url]) if cassette is not None else None
    reply: AgentReply | None = None
    failure: str | None = None
    started = time.monotonic()
    try:
        if recorded is not None:
            for call in recorded["calls"]:
                endpoint.call(call["tool"], call["arguments"])
        reply = agent.send(prompt, data, transport)
    except CannotOverwriteExistingCassetteException as error:
        if recorded is None or recorded["failure"] is None:
            return _ended(task, endpoint, prompt, outcomes.CASSETTE_MISMATCH, error=str(error))
        failure = recorded["failure"]  # the recorded exchange ended without an answer (timeout, refused connection)
    except TimeoutError:
        failure = f"no answer within {limits.timeout:g} s (--timeout)"
    except Exception as error:  # the agent answered something that is not A2A, or nothing at all
        failure = f"{type(error).__name__}: {error}"
    finally:
        if host is not None:
            host.close(endpoint)
    elapsed = time.monotonic() - started
    exchange = {"calls": endpoint.received, "failure": failure}
    if cassette is not None and not replaying:
        _save_exchange(cassette, exchange)
    ended = _decide(task, endpoint, prompt, data, reply, failure, elapsed, exchange)
    # An agent may echo its URL (its task history, its own report): the token stays out of every file.
    ended.messages = Scrubber([mcp_url, endpoint.token]).data(ended.messages)
    return ended


def _decide(
    task: Task,
    endpoint: ToolEndpoint,
    prompt: str,
    data: dict[str, Any],
    reply: AgentReply | None,
    failure: str | None,
    elapsed: float,
    exchange: dict[str, Any],
) -> A2AOutcome:
    shown_data = {**data, "mcp_server_url": HIDDEN}
    reply_data = reply.data if reply is not None else None
    if endpoint.limit_reached or (reply_data or {}).get("max_rounds_reached") is True:
        ended = _ended(
            task, endpoint, prompt, outcomes.LIMIT_REACHED, reply=reply, elapsed=elapsed, error=failure, data=shown_data
        )
    elif failure is not None or reply is None:
        ended = _ended(
            task,
            endpoint,
            prompt,
            outcomes.ERROR,
            reply=reply,
            elapsed=elapsed,
            data=shown_data,
            error=failure or "the agent sent no reply",
        )
        ended.error_source = "agent"
    elif reply.state != COMPLETED_STATE:
        ended = _ended(
            task,
            endpoint,
            prompt,
            outcomes.ERROR,
            reply=reply,
            elapsed=elapsed,
            data=shown_data,
            error=f"the agent's task ended {reply.state}: {reply.text[:SHOWN_CHARS]!r}",
        )
        ended.error_source = "agent"
    else:
        answer = endpoint.answer if endpoint.answer is not None else finish_answer(reply.text)
        if answer is None:
            ended = _ended(
                task,
                endpoint,
                prompt,
                outcomes.INVALID_ACTION,
                reply=reply,
                elapsed=elapsed,
                data=shown_data,
                error=f"final reply without FINISH([...]) holding a JSON list: {reply.text[:SHOWN_CHARS]!r}",
            )
        else:
            if endpoint.answer is None:
                endpoint.history.append({"role": "agent", "content": f"{protocol.FINISH_PREFIX}{answer})"})
            ended = _ended(
                task, endpoint, prompt, outcomes.COMPLETED, result=answer, reply=reply, elapsed=elapsed, data=shown_data
            )
    ended.exchange = exchange
    return ended


def _ended(
    task: Task,
    endpoint: ToolEndpoint,
    prompt: str,
    status: str,
    *,
    result: str | None = None,
    error: str | None = None,
    reply: AgentReply | None = None,
    elapsed: float = 0.0,
    data: dict[str, Any] | None = None,
) -> A2AOutcome:
    sent = reply is not None or elapsed > 0
    return A2AOutcome(
        task_id=task.id,
        status=status,
        result=result,
        history=list(endpoint.history),
        num_turns=len(endpoint.calls),
        prompt_tokens=None,
        completion_tokens=None,
        model_latency_s=elapsed,
        model_calls=1 if sent else 0,
        retries=0,
        error=error,
        calls=[
            {
                "ok": reply is not None,
                "latency_s": elapsed,
                "lost_s": 0.0 if reply is not None else elapsed,
                "prompt_tokens": None,
                "completion_tokens": None,
                "retries": 0,
                "timeouts": 0,
                "finish_reason": reply.state if reply is not None else None,
            }
        ]
        if sent
        else [],
        refused_requests=endpoint.refused_requests,
        messages=_messages(prompt, data, endpoint, reply),
        tool_errors=endpoint.tool_errors,
    )


def _messages(
    prompt: str, data: dict[str, Any] | None, endpoint: ToolEndpoint, reply: AgentReply | None
) -> list[dict[str, Any]]:
    """The exchange as the transcript keeps it: our message, the tool calls with their results, the reply."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt, "data": data or {}}]
    for index, call in enumerate(endpoint.calls, start=1):
        call_id = f"call_{index}"
        arguments = call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"])
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": call["tool"], "arguments": arguments}}
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": call["result"]})
    if reply is not None:
        messages.append({"role": "assistant", "content": reply.text, "state": reply.state, "data": reply.data or {}})
    return messages


def _load_exchange(cassette: Any) -> dict[str, Any]:
    path = exchange_path(cassette.path)
    if not path.exists():
        raise FileNotFoundError(f"no {path.name} beside the cassette {cassette.path}: re-record the attempt")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        "calls": [line for line in lines if "tool" in line],
        "failure": next((line["failure"] for line in lines if "failure" in line), None),
    }


def _save_exchange(cassette: Any, exchange: dict[str, Any]) -> None:
    lines = [json.dumps(call, ensure_ascii=False) for call in exchange["calls"]]
    lines.append(json.dumps({"failure": exchange["failure"]}, ensure_ascii=False))
    exchange_path(cassette.path).write_text("\n".join(lines) + "\n", encoding="utf-8")
