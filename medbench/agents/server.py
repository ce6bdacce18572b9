"""A built-in agent as an A2A server (a2a-sdk 0.3, as the public MedAgentBench agents are written).

One task per message: the executor creates the task, marks it working, runs
`medbench.agents.loop.solve`, and completes it with one artifact `Response` (the final text and
a data part), or fails it with the error. Card at `/.well-known/agent-card.json`, JSON-RPC at `/`.
"""

from __future__ import annotations

from typing import Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.apps import A2AStarletteApplication
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentSkill, DataPart, Part, TextPart
from a2a.utils import get_data_parts, get_message_text, new_agent_text_message, new_task

from medbench.agents.loop import solve
from medbench.uvicorn_thread import UvicornThread


class ToolAgentExecutor(AgentExecutor):
    """Runs one task per message with `model` and the MCP tools the message names."""

    def __init__(self, model: Any) -> None:
        self.model = model

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        task = context.current_task or new_task(message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        data = get_data_parts(message.parts)
        try:
            answer = await solve(get_message_text(message), data[0] if data else None, self.model)
        except Exception as error:  # reported to the evaluator as a failed task, as the public agents do
            await updater.failed(
                new_agent_text_message(f"Agent error: {type(error).__name__}: {error}", task.context_id, task.id)
            )
            return
        await updater.add_artifact(
            [Part(root=TextPart(text=answer.text)), Part(root=DataPart(data=answer.data()))], name="Response"
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("cancelling a task is not supported")


def agent_card(model_name: str, url: str) -> AgentCard:
    return AgentCard(
        name=f"medbench {model_name} agent",
        version="1",
        url=url,
        description=f"A MedAgentBench agent: the model {model_name} with the FHIR tools it finds over MCP.",
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text", "data"],
        default_output_modes=["text", "data"],
        skills=[
            AgentSkill(
                id="medagentbench",
                name="MedAgentBench task",
                description="Answers a clinical task on a FHIR EHR through MCP tools; replies FINISH([...]).",
                tags=["medical", "fhir", "mcp"],
            )
        ],
    )


def agent_app(model: Any, model_name: str, url: str) -> Any:
    """The ASGI app of one built-in agent."""
    handler = DefaultRequestHandler(agent_executor=ToolAgentExecutor(model), task_store=InMemoryTaskStore())
    return A2AStarletteApplication(agent_card=agent_card(model_name, url), http_handler=handler).build()


class AgentServer:
    """A built-in agent on `host:port` (0: a free port) in a background thread (the CLI, and tests).

    The card names the agent's URL, known only once the socket listens: the app is built at
    the first request. `card_url` overrides it (an agent behind a proxy or in a container)."""

    def __init__(
        self, model: Any, model_name: str, host: str = "127.0.0.1", port: int = 0, card_url: str | None = None
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.card_url = card_url
        self._app: Any = None
        self._server = UvicornThread(self._asgi, host, port, name="medbench-agent", lifespan="off")

    @property
    def url(self) -> str:
        return self._server.base_url + "/"

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = agent_app(self.model, self.model_name, self.card_url or self.url)
        await self._app(scope, receive, send)

    def start(self) -> AgentServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> AgentServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
