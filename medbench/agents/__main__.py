"""`python -m medbench.agents serve --port P --model NAME [--base-url URL --api-key-env VAR]`.

Serves an A2A agent: the model (any OpenAI-compatible endpoint, or a built-in one --
`reference`, `do-nothing`, `give-up` -- served in this process) with the FHIR tools it finds
over MCP at the URL each message names. Benchmark it with
`pytest tests_bench --agent-url=http://127.0.0.1:P`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import ExitStack

from medbench.agents.server import AgentServer
from medbench.models.builtin.server import BUILTIN_MODELS, ReferenceServer
from medbench.models.client import OpenAIChatModel
from medbench.settings import OPENAI_BASE_URL, CallLimits

BUILTIN_API_KEY = "reference"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medbench.agents", description=__doc__.split("\n\n")[1])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an A2A agent until interrupted")
    serve.add_argument(
        "--model", required=True, metavar="NAME", help=f"model name; built in: {', '.join(sorted(BUILTIN_MODELS))}"
    )
    serve.add_argument("--port", type=int, default=9019, help="port to listen on (default 9019; 0: a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--card-url", default=None, metavar="URL", help="URL the agent card names (default: http://HOST:PORT/)"
    )
    serve.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help=f"OpenAI-compatible endpoint (else $OPENAI_BASE_URL, else {OPENAI_BASE_URL})",
    )
    serve.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="variable holding the API key")
    serve.add_argument("--timeout", type=float, default=CallLimits.timeout, metavar="S", help="model call timeout")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if args.model in BUILTIN_MODELS:
            base_url = stack.enter_context(ReferenceServer()).base_url
            model = OpenAIChatModel(args.model, base_url, api_key=BUILTIN_API_KEY, timeout=args.timeout)
        else:
            base_url = args.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
            model = OpenAIChatModel(
                args.model, base_url, api_key=os.environ.get(args.api_key_env), timeout=args.timeout
            )
        stack.enter_context(model)
        try:
            server = stack.enter_context(AgentServer(model, args.model, args.host, args.port, args.card_url))
        except OSError as error:
            print(f"medbench.agents: {error}", file=sys.stderr)
            return 2
        print(
            f"medbench agent {args.model!r} serving A2A at {server.url} (card: {server.url}.well-known/agent-card.json)",
            flush=True,
        )
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
