"""Fuzz the embedded FHIR server: N random and adversarial requests, then 1,000 paged searches.

    .venv/bin/python scripts/fuzz_fhir_server.py --requests 10000 --scale small

The server runs in a child process (so its memory is measured alone, from /proc) with the
default limits except shorter idle/request timeouts, which only make the deliberately
stalled requests end sooner. Prints the status counts, 5xx answers, hangs (no answer and no
close within the client timeout) and the server's RSS growth over the fuzz run and over
1,000 `_count=1` searches (each keeps its match list for its next link).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import requests

from medbench.ehr.cache import ensure_database
from medbench.fhir import FhirServer
from medbench.serving import ServerLimits
from medbench.testing.hostile_http import run_fuzz

LIMITS = ServerLimits(idle_timeout_s=2, request_timeout_s=4)


def _serve(db_path: str, pipe: Connection) -> None:
    with FhirServer(db_path, limits=LIMITS) as server:
        pipe.send(server.port)
        pipe.recv()  # until the parent says stop


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--timeout", type=float, default=20.0, help="client seconds before a request counts as hung")
    parser.add_argument("--scale", default="small", choices=["small", "medium", "full"])
    parser.add_argument("--db", type=Path, default=None, help="a built EHR database instead of the cached one")
    parser.add_argument("--paging-query", default="Observation?_count=1", help="the search repeated 1,000 times")
    args = parser.parse_args(argv)

    db = args.db or ensure_database(scale=args.scale)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(str(db), child), daemon=True)
    process.start()
    try:
        port = parent.recv()
        base = f"http://127.0.0.1:{port}/fhir/"
        run_fuzz(
            "127.0.0.1", port, seed=args.seed + 1, count=200, timeout_s=args.timeout, clients=args.clients
        )  # warm-up
        before = rss_mib(process.pid)
        started = time.perf_counter()
        report = run_fuzz(
            "127.0.0.1", port, seed=args.seed, count=args.requests, timeout_s=args.timeout, clients=args.clients
        )
        elapsed = time.perf_counter() - started
        after = rss_mib(process.pid)
        alive = requests.get(base + "metadata", timeout=30).status_code == 200

        paging_before = rss_mib(process.pid)
        with requests.Session() as session:
            for _ in range(1000):
                session.get(base + args.paging_query, timeout=60).raise_for_status()
        paging_after = rss_mib(process.pid)
    finally:
        parent.send("stop")
        process.join(timeout=30)

    print(f"database: {db}")
    print(f"fuzzed requests: {report.requests} in {elapsed:.1f} s ({args.clients} clients, seed {args.seed})")
    print("statuses: " + ", ".join(f"{status}: {n}" for status, n in sorted(report.statuses.items())))
    print(f"closed without an answer (stalled bodies, by design): {report.closed_without_answer}")
    print(f"5xx answers: {len(report.server_errors)}")
    for line in report.server_errors[:20]:
        print(f"  {line}")
    print(f"hangs: {len(report.hangs)}")
    for line in report.hangs[:20]:
        print(f"  {line}")
    print(f"server RSS: {before:.1f} MiB -> {after:.1f} MiB over the fuzz run (growth {after - before:+.1f} MiB)")
    print(
        f"server RSS over 1,000 '{args.paging_query}' searches: {paging_before:.1f} -> {paging_after:.1f} MiB (growth {paging_after - paging_before:+.1f} MiB)"
    )
    print(f"server still answering: {alive}")
    return 0 if report.failures == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
