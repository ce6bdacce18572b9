"""The agent under test, reached over A2A with a2a-sdk 0.3 (the version the public evaluators speak).

Per attempt: fetch the agent card from `<url>/.well-known/agent-card.json`, send to the URL the
user gave (a card may advertise `http://0.0.0.0:PORT/`, as AgentBeats' gateway also corrects),
JSON-RPC `message/send`, blocking, streaming off, in a new conversation; the last event is the
answer. Each attempt runs its own event loop and HTTP client in its own thread, so attempts in
flight together share nothing; `transport` lets an attempt's cassette record or answer the traffic.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import DataPart, Message, Part, Role, TextPart

from medbench.a2a.messages import AgentReply, reply_from_event
from medbench.mcp.server import McpHost

CARD_PATH = "/.well-known/agent-card.json"


class AgentUnreachable(Exception):
    """Nothing usable answers at the agent URL (no server, or no agent card)."""


class A2AAgent:
    """The A2A agent at `url`; it also owns the process's MCP host, started at the first attempt."""

    def __init__(self, url: str, timeout: float, mcp_host: str = "127.0.0.1") -> None:
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout
        self._mcp_host_name = mcp_host
        self._host: McpHost | None = None

    def mcp_host(self) -> McpHost:
        """The loopback MCP server of this process (one for all its attempts; each has its own path)."""
        if self._host is None:
            self._host = McpHost(self._mcp_host_name).start()
        return self._host

    def card(self) -> dict[str, Any]:
        """The agent card (a setup check: AgentUnreachable names the URL when nothing answers)."""
        try:
            response = httpx.get(self.url.rstrip("/") + CARD_PATH, timeout=10.0, trust_env=False)
            response.raise_for_status()
            card: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise AgentUnreachable(
                f"no A2A agent card at {self.url.rstrip('/')}{CARD_PATH} "
                f"({type(error).__name__}: {error}); check --agent-url and that the agent runs"
            ) from None
        return card

    def send(self, text: str, data: dict[str, Any], transport: httpx.AsyncBaseTransport | None = None) -> AgentReply:
        """One message, one final answer; raises TimeoutError after `timeout` seconds for the whole exchange."""
        return asyncio.run(asyncio.wait_for(self._send(text, data, transport), self.timeout))

    async def _send(self, text: str, data: dict[str, Any], transport: httpx.AsyncBaseTransport | None) -> AgentReply:
        http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), transport=transport, trust_env=False)
        async with http:
            card = await A2ACardResolver(http, base_url=self.url.rstrip("/")).get_agent_card()
            card.url = self.url
            client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
            message = Message(
                role=Role.user,
                message_id=uuid.uuid4().hex,
                parts=[Part(root=TextPart(text=text)), Part(root=DataPart(data=data))],
            )
            last = None
            async for event in client.send_message(message):
                last = event
            if last is None:
                raise ValueError("the agent sent no event")
            return reply_from_event(last)

    def close(self) -> None:
        if self._host is not None:
            self._host.stop()
            self._host = None

    def __enter__(self) -> A2AAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
