"""`python -m medbench.mcp serve`: any MCP client (here the official `mcp` SDK's) lists the tools-mode
catalog and gets real FHIR Bundles, over streamable HTTP and over stdio; and the per-attempt
endpoint's rules (cap, finish, end of attempt) that keep a flooding or late agent harmless."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from medbench.agent.loop import LoopConfig
from medbench.agent.tools import build_tools
from medbench.mcp.endpoint import ToolEndpoint
from medbench.package_data import read_json

SERVE = [sys.executable, "-m", "medbench.mcp", "serve", "--ehr-scale", "small"]
START_S = 180
TOOLS = {"search_patients", "search_conditions", "create_medication_request", "get_next_page", "finish"}


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The CLI on a free port; its URL is read from the line it prints once it listens."""
    process = subprocess.Popen([*SERVE, "--port", "0"], stderr=subprocess.PIPE, text=True)
    url, deadline, seen = None, time.monotonic() + START_S, []
    while url is None and time.monotonic() < deadline and process.poll() is None:
        if select.select([process.stderr], [], [], 1.0)[0]:
            line = process.stderr.readline()
            seen.append(line)
            found = re.search(r"tools at (http://\S+/mcp)", line)
            url = found.group(1) if found else None
    try:
        assert url is not None, "".join(seen)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


async def list_and_search(session: ClientSession) -> tuple[set[str], dict]:
    await session.initialize()
    listed = await session.list_tools()
    result = await session.call_tool("search_patients", {"birthdate": "ge1900-01-01", "_count": 2})
    assert not result.isError
    return {tool.name for tool in listed.tools}, json.loads(result.content[0].text)


def test_an_mcp_client_lists_the_tools_over_http_and_gets_a_real_bundle(http_server: str) -> None:
    async def client() -> tuple[set[str], dict]:
        async with streamable_http_client(http_server) as (read, write, _), ClientSession(read, write) as session:
            return await list_and_search(session)

    names, bundle = asyncio.run(client())
    assert TOOLS <= names
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert {entry["resource"]["resourceType"] for entry in bundle["entry"]} == {"Patient"}
    assert bundle["link"][0]["url"].startswith("http://localhost:8080/fhir/"), "clients see the display base"


def test_an_mcp_client_gets_the_same_tools_over_stdio() -> None:
    parameters = StdioServerParameters(
        command=SERVE[0], args=[*SERVE[1:], "--transport", "stdio"], env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )

    async def client() -> tuple[set[str], dict, str]:
        async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
            names, bundle = await list_and_search(session)
            finished = await session.call_tool("finish", {"answers": ["S1234567"]})
            return names, bundle, finished.content[0].text

    names, bundle, finished = asyncio.run(client())
    assert TOOLS <= names and bundle["resourceType"] == "Bundle"
    assert finished == 'Answers recorded: ["S1234567"]', "a standalone server records finish and goes on"


def endpoint(max_tool_calls: int | None = 3) -> ToolEndpoint:
    """Calls of unknown tools and finish never reach the gateway: none is needed."""
    tools = build_tools(read_json("functions_generated.json"))
    return ToolEndpoint(tools, gateway=None, config=LoopConfig(), max_tool_calls=max_tool_calls, prompt="task")  # type: ignore[arg-type]


def test_an_attempt_endpoint_refuses_calls_over_its_cap_and_remembers_a_flood_only_up_to_it() -> None:
    tools = endpoint(max_tool_calls=3)
    answers = [tools.call("no_such_tool", {}) for _ in range(100)]
    assert all(answer.is_error for answer in answers)
    assert "there is no tool named 'no_such_tool'" in answers[0].text
    assert "limit of 3 tool calls" in answers[3].text
    assert len(tools.calls) == 3 and tools.limit_reached and tools.rejected_calls == 97
    assert len(tools.received) == 5, "a flood is remembered for replay only a little past the cap"


def test_an_attempt_endpoint_takes_one_finish_and_nothing_after_it_or_after_the_attempt() -> None:
    tools = endpoint()
    assert tools.call("finish", {"answers": [1, "a"]}).is_error is False
    assert tools.answer == '[1, "a"]' and tools.history[-1] == {"role": "agent", "content": 'FINISH([1, "a"])'}
    assert tools.call("finish", {"answers": [2]}).text.startswith("Error: finish was already called")
    tools.close()
    assert tools.call("search_patients", {}).text.startswith("Error: this task attempt is over")
    assert tools.answer == '[1, "a"]'
