"""`python -m medbench.models serve --port P [--model reference|do-nothing] [--latency S]`.

The OpenAI-compatible endpoint behind `--model=reference`, standalone: any requested model name
is answered by the chosen built-in model, so proxies, other harnesses and benchmarks of this one
(`scripts/bench_concurrency.py`) can call it like a hosted model.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading

from medbench.models.builtin.server import BUILTIN_MODELS, MODEL_ID, REFERENCE_LIMITS, ReferenceServer


class AnswerCounter:
    """Counts answers; after `limit` of them (None: never) it sets `stop`, and the server goes away."""

    def __init__(self, limit: int | None, stop: threading.Event) -> None:
        self.limit = limit
        self.stop = stop
        self.count = 0
        self._lock = threading.Lock()

    def answered(self) -> None:
        with self._lock:
            self.count += 1
            if self.limit is not None and self.count >= self.limit:
                self.stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medbench.models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a built-in model over the OpenAI chat-completions API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--model",
        default=MODEL_ID,
        choices=sorted(BUILTIN_MODELS),
        help="the built-in model that answers every request (default reference)",
    )
    serve.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds to wait before each answer, to stand in for a hosted model (default 0)",
    )
    serve.add_argument(
        "--threads",
        type=int,
        default=128,
        metavar="N",
        help="requests answered at once (default 128): with --latency, at most N conversations "
        "wait at the same time, so keep it above the harness's attempts in flight",
    )
    serve.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="N",
        help="stop serving after answering N chat completions (a replica that goes away mid-run, "
        "for failover drills: docs/sharding.md)",
    )
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must not be negative")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.stop_after is not None and args.stop_after < 1:
        parser.error("--stop-after must be at least 1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    limits = dataclasses.replace(REFERENCE_LIMITS, threads=args.threads)
    counter = AnswerCounter(args.stop_after, stop)
    with ReferenceServer(
        args.host, args.port, limits=limits, serve_as=args.model, latency_s=args.latency, on_answer=counter.answered
    ) as server:
        print(
            f"serving the built-in {args.model!r} model at {server.base_url} "
            f"(any model name; {args.latency:g} s per answer); Ctrl-C to stop",
            flush=True,
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    print(f"stopped after answering {counter.count} chat completion(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
