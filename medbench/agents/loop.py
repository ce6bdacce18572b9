"""The built-in agents' own loop: a chat model with the tools it discovers over MCP.

This is an agent under test, not the harness (`medbench.agent` is the harness's agent loop):
it knows only what the message tells it -- the prompt, and the MCP URL and round limit of the
data part -- as an agent written for the public MedAgentBench evaluators does. Each round the
model answers with tool calls, which run on the MCP server in order; `finish` (or a reply
without tool calls) ends the task. The final reply is `FINISH([...])` plus a data part with
`tool_history`, `rounds` and `max_rounds_reached` (the Agentify-MedAgentBench purple agent's fields).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

MCP_SUFFIX = "/mcp"
FINISH_TOOL = "finish"
GAVE_UP = 'FINISH(["Unable to complete task within maximum iterations"])'
MCP_TIMEOUT_S = 120.0


class MissingTaskData(ValueError):
    """The message has no data part with `mcp_server_url` (the evaluators' agents refuse it too)."""


@dataclass
class AgentAnswer:
    """The final text (normally `FINISH([...])`) and the data part that goes with it."""

    text: str
    tool_history: list[dict[str, Any]] = field(default_factory=list)
    rounds: int = 0
    max_rounds_reached: bool = False

    def data(self) -> dict[str, Any]:
        return {"tool_history": self.tool_history, "rounds": self.rounds, "max_rounds_reached": self.max_rounds_reached}


async def solve(prompt: str, data: dict[str, Any] | None, model: Any) -> AgentAnswer:
    """Do one task; `model` has `complete_with_tools(messages, tools)` (medbench.models.client.OpenAIChatModel)."""
    if not data or not isinstance(data.get("mcp_server_url"), str):
        raise MissingTaskData("the message needs a data part with mcp_server_url (and max_iterations)")
    url = data["mcp_server_url"].rstrip("/") + MCP_SUFFIX
    max_rounds = int(data.get("max_iterations") or 8)
    async with (
        httpx.AsyncClient(timeout=MCP_TIMEOUT_S, trust_env=False) as http,
        streamable_http_client(url, http_client=http, terminate_on_close=False) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        specs = [
            {
                "type": "function",
                "function": {"name": tool.name, "description": tool.description or "", "parameters": tool.inputSchema},
            }
            for tool in listed.tools
        ]
        return await _rounds(session, model, prompt, specs, max_rounds)


async def _rounds(
    session: ClientSession, model: Any, prompt: str, specs: list[dict[str, Any]], max_rounds: int
) -> AgentAnswer:
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    answer = AgentAnswer(text=GAVE_UP)
    for round_number in range(1, max_rounds + 1):
        answer.rounds = round_number
        reply = await asyncio.to_thread(model.complete_with_tools, messages, specs)
        if not reply.tool_calls:
            answer.text = reply.content or ""
            return answer
        messages.append(
            {
                "role": "assistant",
                "content": reply.content or None,
                "tool_calls": [call.to_message() for call in reply.tool_calls],
            }
        )
        for call in reply.tool_calls:
            try:
                arguments = json.loads(call.arguments) if call.arguments.strip() else {}
            except ValueError:
                arguments = call.arguments  # sent as it is: the server answers what is wrong with it
            result = await session.call_tool(
                call.name, arguments if isinstance(arguments, dict) else {"raw": arguments}
            )
            text = "".join(getattr(item, "text", "") for item in result.content)
            answer.tool_history.append({"tool_name": call.name, "arguments": arguments, "is_error": result.isError})
            if call.name == FINISH_TOOL and not result.isError and isinstance(arguments, dict):
                answer.text = f"FINISH({json.dumps(arguments.get('answers'), ensure_ascii=False)})"
                return answer
            messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    answer.max_rounds_reached = True
    return answer
