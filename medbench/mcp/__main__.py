"""`python -m medbench.mcp serve`: the EHR tools of a task set over MCP, for any MCP client.

    python -m medbench.mcp serve --port 8002                 # streamable HTTP at http://127.0.0.1:8002/mcp
    python -m medbench.mcp serve --transport stdio           # stdio (an MCP client starts it)
    python -m medbench.mcp serve --fhir-url http://localhost:8080/fhir/ --tasks official

The tools are `--protocol=tools`'s (the task set's function catalog plus get_next_page,
create_resource and finish), run through the same gateway. The embedded EHR is built (once,
then cached) unless --fhir-url names a server. Progress goes to stderr: over stdio, stdout is the wire.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

import anyio

from medbench.agent.loop import LoopConfig
from medbench.agent.tools import tools_for
from medbench.mcp.endpoint import ToolEndpoint
from medbench.mcp.server import McpHost, tools_server
from medbench.settings import DEFAULT_DISPLAY_URL, EHR_SCALES, POST_MODES, Settings, SetupError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medbench.mcp", description="The EHR tools over MCP.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the tools until interrupted")
    serve.add_argument(
        "--transport", choices=("http", "stdio"), default="http", help="streamable HTTP (default) or stdio"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback)")
    serve.add_argument("--port", type=int, default=8002, help="port to listen on (default 8002; 0: a free one)")
    serve.add_argument(
        "--tasks", default="generated", metavar="SPEC", help="task set whose catalog the tools come from"
    )
    serve.add_argument("--official-dir", default=None, metavar="DIR", help="folder holding the official assets")
    serve.add_argument(
        "--fhir-url", default=None, metavar="URL", help="external FHIR R4 base (default: the embedded EHR)"
    )
    serve.add_argument("--ehr-scale", choices=EHR_SCALES, default="small", help="embedded EHR size (default small)")
    serve.add_argument("--ehr-seed", type=int, default=0, help="embedded EHR seed")
    serve.add_argument(
        "--post-mode",
        choices=POST_MODES,
        default="official",
        help="official: create_ calls are acknowledged, not sent (as upstream); execute: sent",
    )
    args = parser.parse_args(argv)
    fhir_url = args.fhir_url if not args.fhir_url or args.fhir_url.endswith("/") else args.fhir_url + "/"
    settings = Settings(
        tasks=args.tasks,
        official_dir=Path(args.official_dir) if args.official_dir else None,
        fhir_url=fhir_url,
        fhir_display_url=fhir_url or DEFAULT_DISPLAY_URL,
        ehr_scale=args.ehr_scale,
        ehr_seed=args.ehr_seed,
        post_mode=args.post_mode,
    )
    try:
        return _serve(settings, args)
    except SetupError as error:
        print(f"medbench.mcp: {error}", file=sys.stderr)
        return 2


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from medbench.runner.session import BenchSession

    bench = BenchSession(settings, "mcp")
    with ExitStack() as stack:
        stack.callback(bench.close)
        print(f"medbench.mcp: preparing the EHR ({settings.tasks} tasks) ...", file=sys.stderr, flush=True)
        environment = bench.start_environment()
        gateway = stack.enter_context(environment.gateway())
        config = LoopConfig(post_mode=settings.post_mode, api_base=environment.display_base)
        endpoint = ToolEndpoint(tools_for(bench.task_set), gateway, config, ends_on_finish=False, token="standalone")
        if args.transport == "stdio":
            anyio.run(_stdio, endpoint)
            return 0
        try:
            host = stack.enter_context(McpHost(args.host, args.port, standalone=endpoint))
        except OSError as error:
            print(f"medbench.mcp: {error}", file=sys.stderr)
            return 2
        print(
            f"medbench.mcp: {len(endpoint.toolset.tools)} tools at {host.base_url}/mcp "
            f"(FHIR base shown to clients: {environment.display_base})",
            file=sys.stderr,
            flush=True,
        )
        try:
            anyio.run(anyio.sleep_forever)
        except KeyboardInterrupt:
            pass
    return 0


async def _stdio(endpoint: ToolEndpoint) -> None:
    from mcp.server.stdio import stdio_server

    server = tools_server(lambda _request: endpoint)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    sys.exit(main())
