"""An A2A agent (a2a-sdk 0.3) that runs an OpenAI model with the MCP tools each task names.

    OPENAI_API_KEY=... MODEL=gpt-4o python examples/a2a_agent.py 9019
    pytest tests_bench --agent-url=http://127.0.0.1:9019

See docs/agents.md ("Benchmark your own agent").
"""

import json
import os
import sys

import uvicorn
from a2a.server.agent_execution import AgentExecutor
from a2a.server.apps import A2AStarletteApplication
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCapabilities, AgentCard
from a2a.utils import get_data_parts, get_message_text, new_agent_text_message
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from openai import AsyncOpenAI

llm, MODEL = AsyncOpenAI(), os.environ.get("MODEL", "gpt-4o")


async def solve(prompt: str, data: dict) -> str:
    async with (
        streamable_http_client(data["mcp_server_url"] + "/mcp") as (read, write, _),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.inputSchema}}
                 for t in (await mcp.list_tools()).tools]  # fmt: skip
        messages = [{"role": "user", "content": prompt}]
        for _ in range(data["max_iterations"]):
            reply = (await llm.chat.completions.create(model=MODEL, messages=messages, tools=tools)).choices[0].message
            if not reply.tool_calls:
                return reply.content or ""
            messages.append(reply.model_dump(exclude_none=True))
            for call in reply.tool_calls:
                arguments = json.loads(call.function.arguments or "{}")
                result = await mcp.call_tool(call.function.name, arguments)
                if call.function.name == "finish" and not result.isError:
                    return f"FINISH({json.dumps(arguments['answers'])})"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result.content[0].text})
    return "FINISH([])"


class Executor(AgentExecutor):
    async def execute(self, context, event_queue):
        answer = await solve(get_message_text(context.message), get_data_parts(context.message.parts)[0])
        await event_queue.enqueue_event(new_agent_text_message(answer))

    async def cancel(self, context, event_queue):
        raise NotImplementedError


port = int(sys.argv[1])
card = AgentCard(name="my agent", description="a MedAgentBench agent", url=f"http://127.0.0.1:{port}/", version="1",
                 capabilities=AgentCapabilities(), default_input_modes=["text"], default_output_modes=["text"], skills=[])  # fmt: skip
handler = DefaultRequestHandler(agent_executor=Executor(), task_store=InMemoryTaskStore())
uvicorn.run(A2AStarletteApplication(agent_card=card, http_handler=handler).build(), host="127.0.0.1", port=port)
