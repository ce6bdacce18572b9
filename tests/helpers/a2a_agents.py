"""A2A agents written for the tests directly with a2a-sdk and the mcp SDK -- none of medbench's own
agent code -- the way agents for the public MedAgentBench evaluators (Agentify-MedAgentBench's
purple agent) are written: a2a-sdk 0.3 server, one task per message, the first data part must
carry `mcp_server_url` and `max_iterations`, tools over streamable HTTP at `<mcp_server_url>/mcp`,
one artifact `Response` with `FINISH([...])` and a data part (`tool_history`, `fhir_operations`, `rounds`).

Each behaviour is one `async def behaviour(prompt, data) -> str` (the final text), run by
`ScriptedExecutor`; hostile ones hang, flood, call unknown tools or answer nonsense.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.apps import A2AStarletteApplication
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentSkill, DataPart, Part, TextPart
from a2a.utils import get_data_parts, get_message_text, new_agent_text_message, new_task
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

Behaviour = Callable[[str, dict[str, Any]], Awaitable[str]]


class ScriptedExecutor(AgentExecutor):
    """Agentify's executor pattern: task first, working, then one artifact and completed (or failed)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[dict[str, Any]] = []  # what each message carried: text, data, context and task ids

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        self.received.append(
            {
                "text": get_message_text(message),
                "data": get_data_parts(message.parts),
                "message_context_id": message.context_id,
                "message_task_id": message.task_id,
                "role": message.role.value,
            }
        )
        task = context.current_task or new_task(message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        data = get_data_parts(message.parts)
        try:
            first = data[0]
            if "mcp_server_url" not in first or "max_iterations" not in first:
                raise ValueError("the data part needs mcp_server_url and max_iterations")
            text = await self.behaviour(get_message_text(message), first)
        except Exception as error:
            await updater.failed(new_agent_text_message(f"Agent error: {error}", task.context_id, task.id))
            return
        report = {"tool_history": [], "fhir_operations": [], "rounds": 1}
        await updater.add_artifact([Part(root=TextPart(text=text)), Part(root=DataPart(data=report))], name="Response")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


def card(url: str) -> AgentCard:
    return AgentCard(
        name="test purple agent",
        description="written with a2a-sdk for medbench's tests",
        url=url,
        version="0.1",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[AgentSkill(id="medical_task_fulfillment", name="tasks", description="tasks", tags=[])],
    )


class ServedApp:
    """An ASGI app on a free loopback port in a thread; the app is built once the port is known."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._app: Any = None
        config = uvicorn.Config(
            self._asgi,
            host="127.0.0.1",
            port=0,
            log_level="error",
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build(self.url)
        await self._app(scope, receive, send)

    def __enter__(self) -> ServedApp:
        self._thread.start()
        while not self._server.started:  # uvicorn has no event to wait on; this is server start-up, not a race
            assert self._thread.is_alive(), "the test agent could not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self._server.servers[0].sockets[0].getsockname()[1]}/"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve_agent(behaviour: Behaviour) -> tuple[ServedApp, ScriptedExecutor]:
    executor = ScriptedExecutor(behaviour)

    def build(url: str) -> Any:
        handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore())
        return A2AStarletteApplication(agent_card=card(url), http_handler=handler).build()

    return ServedApp(build), executor


def serve_garbage() -> ServedApp:
    """A card, then JSON-RPC answered with bytes that are no JSON at all."""

    def build(url: str) -> Any:
        async def agent_card(_: Any) -> JSONResponse:
            return JSONResponse(card(url).model_dump(mode="json", by_alias=True, exclude_none=True))

        async def rpc(_: Any) -> PlainTextResponse:
            return PlainTextResponse("<html>definitely not JSON-RPC</html>")

        return Starlette(routes=[Route("/.well-known/agent-card.json", agent_card), Route("/", rpc, methods=["POST"])])

    return ServedApp(build)


@asynccontextmanager
async def tools_session(data: dict[str, Any]) -> Any:
    """mcp 1.x client as Agentify's purple agent opens it: `<mcp_server_url>/mcp`, three streams."""
    async with (
        streamablehttp_client(f"{data['mcp_server_url']}/mcp") as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def result_text(result: Any) -> str:
    return "".join(getattr(item, "text", "") for item in result.content)


# --- behaviours ---------------------------------------------------------------------------------
_NAME = re.compile(r"(?:named|name) (?P<name>[^,(]+?)(?:,| \(| and DOB)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


async def find_patient(prompt: str, data: dict[str, Any]) -> str:
    """Solves task1 (find a patient's MRN) with the MCP tools: one search, then FINISH([mrn])."""
    question = prompt[prompt.rfind("Question:") :]
    name, birthdate = _NAME.search(question).group("name").split(), _DATE.search(question).group()
    async with tools_session(data) as session:
        listed = await session.list_tools()
        assert "search_patients" in [tool.name for tool in listed.tools]
        result = await session.call_tool(
            "search_patients", {"family": name[-1], "given": " ".join(name[:-1]), "birthdate": birthdate}
        )
    bundle = json.loads(result_text(result))
    mrns = [entry["resource"]["identifier"][0]["value"] for entry in bundle.get("entry", [])]
    return f"```\nFINISH({json.dumps(mrns[:1] or ['Patient not found'])})\n```"


async def never_answers(prompt: str, data: dict[str, Any]) -> str:
    await asyncio.Event().wait()  # nothing ever sets it
    return "unreachable"


async def answers_nonsense(prompt: str, data: dict[str, Any]) -> str:
    return "I think the patient is fine. FINISH(not a list"


def calls_unknown_tools(answer: str) -> Behaviour:
    async def behaviour(prompt: str, data: dict[str, Any]) -> str:
        async with tools_session(data) as session:
            result = await session.call_tool("drop_all_tables", {"really": True})
            assert result.isError
        return f"FINISH({answer})"

    return behaviour


def floods(calls: int) -> Behaviour:
    async def behaviour(prompt: str, data: dict[str, Any]) -> str:
        async with tools_session(data) as session:
            for _ in range(calls):
                await session.call_tool("search_patients", {"name": "a"})
        return 'FINISH(["flooded"])'

    return behaviour


def in_turn(*behaviours: Behaviour) -> Behaviour:
    """The first message gets the first behaviour, the second the second, ... (a session run with
    --concurrency=1 sends its attempts in task order)."""
    turn = iter(behaviours)

    async def behaviour(prompt: str, data: dict[str, Any]) -> str:
        return await next(turn)(prompt, data)

    return behaviour
