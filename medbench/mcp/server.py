"""The EHR tools as an MCP server (official `mcp` SDK): one server object, two transports.

`tools_server(resolve)` answers `tools/list` and `tools/call` for whichever `ToolEndpoint`
`resolve` names for the request: over stdio there is one; over HTTP the request's path says
which attempt it belongs to (`McpHost`, `/a/<token>/mcp`). Calls run in a worker thread
(the gateway is blocking HTTP), one at a time per endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from medbench.mcp.endpoint import ToolEndpoint
from medbench.uvicorn_thread import UvicornThread

SERVER_NAME = "medbench-ehr"
INSTRUCTIONS = (
    "Tools over a FHIR R4 electronic health record: search_ tools read, create_ tools write, "
    "get_next_page follows a Bundle's next link, finish ends the task with the answers as a JSON list."
)
ATTEMPT_ROUTE = "/a/{token}/mcp"
STANDALONE_ROUTE = "/mcp"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

Resolver = Callable[[Any], "ToolEndpoint | None"]


def tools_server(resolve: Resolver) -> Server[Any, Any]:
    """The MCP server: `resolve(request)` gives the endpoint a call belongs to (request is None over stdio)."""
    server: Server[Any, Any] = Server(SERVER_NAME, instructions=INSTRUCTIONS)

    def endpoint() -> ToolEndpoint:
        found = resolve(server.request_context.request)
        if found is None:
            raise LookupError("no such task attempt (it ended, or the token is wrong)")
        return found

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [
            types.Tool(name=tool.name, description=tool.description, inputSchema=tool.parameters)
            for tool in endpoint().toolset.tools
        ]

    # Arguments are checked by the catalog's own rules (tools mode), not the SDK's: a create_ call
    # with bad arguments must still reach the graders as an attempted, unaccepted POST.
    @server.call_tool(validate_input=False)
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        target = endpoint()
        result = await anyio.to_thread.run_sync(target.call, name, arguments)
        return types.CallToolResult(content=[types.TextContent(type="text", text=result.text)], isError=result.is_error)

    return server


class McpHost:
    """A streamable-HTTP MCP server in a background thread: attempts come and go as tokens.

    `open(endpoint)` returns the endpoint's base URL (`http://host:port/a/<token>`, to which
    agents append `/mcp`, as the public evaluators' agents do); `close(endpoint)` makes the URL
    answer 404 and refuses every later call. `standalone` is served at `/mcp` as well.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, standalone: ToolEndpoint | None = None) -> None:
        self.host = host
        self._wanted_port = port
        self.standalone = standalone
        self._endpoints: dict[str, ToolEndpoint] = {}
        self._lock = threading.Lock()
        self._server: UvicornThread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("McpHost is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def open(self, endpoint: ToolEndpoint) -> str:
        with self._lock:
            self._endpoints[endpoint.token] = endpoint
        return f"{self.base_url}/a/{endpoint.token}"

    def close(self, endpoint: ToolEndpoint) -> None:
        endpoint.close()
        with self._lock:
            self._endpoints.pop(endpoint.token, None)

    def lookup(self, token: str | None) -> ToolEndpoint | None:
        if token is None:
            return self.standalone
        with self._lock:
            return self._endpoints.get(token)

    def app(self) -> Starlette:
        """The ASGI app: `/a/<token>/mcp` per attempt, `/mcp` for the standalone endpoint."""
        manager = StreamableHTTPSessionManager(
            app=tools_server(self._resolve), json_response=True, stateless=True, security_settings=_security(self.host)
        )

        dispatch = _Dispatch(self, manager)

        async def lifespan(_: Starlette) -> Any:
            async with manager.run():
                yield

        return Starlette(
            routes=[Route(ATTEMPT_ROUTE, endpoint=dispatch), Route(STANDALONE_ROUTE, endpoint=dispatch)],
            lifespan=asynccontextmanager(lifespan),
        )

    def _resolve(self, request: Any) -> ToolEndpoint | None:
        token = request.path_params.get("token") if request is not None else None
        return self.lookup(token)

    def start(self) -> McpHost:
        self._server = UvicornThread(self.app(), self.host, self._wanted_port, name="medbench-mcp").start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> McpHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Dispatch:
    """The raw ASGI app behind both routes (an object, so Starlette passes every method through):
    a path whose token names no open endpoint is answered 404 before the MCP SDK sees it."""

    def __init__(self, host: McpHost, manager: StreamableHTTPSessionManager) -> None:
        self._host = host
        self._manager = manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = scope.get("path_params", {}).get("token")
        if self._host.lookup(token) is None:
            await PlainTextResponse("no such MCP endpoint", status_code=404)(scope, receive, send)
            return
        await self._manager.handle_request(scope, receive, send)


def _security(host: str) -> TransportSecuritySettings | None:
    """On loopback, only loopback Host headers are answered (DNS-rebinding protection), as the SDK advises."""
    if host not in LOOPBACK_HOSTS:
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
