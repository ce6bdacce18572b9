"""Benchmark the embedded FHIR server at a given EHR scale (default: full).

Measures what issue #2 asks for: first build time, cached start time, database size, server
RSS, p50/p95 latency of the queries agents and graders send, and requests/s with concurrent
clients. The server runs as its own process (`python -m medbench.fhir serve`), as users run
it, so its RSS and start time are its own.

    .venv/bin/python scripts/bench_fhir.py --scale full
    .venv/bin/python scripts/bench_fhir.py --scale small --requests 50   # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
from tabulate import tabulate

from medbench.ehr.cache import database_path, ensure_database
from medbench.ehr.population import build_population
from medbench.fhir import FhirServer

NOW_MINUS_24H = "2023-11-12T10:15:00+00:00"


def start_server_process(db: Path) -> tuple[subprocess.Popen[str], str, float]:
    """Launch the serve command on a free port; returns (process, base URL, seconds to first answer)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "medbench.fhir", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "FHIR server at " in line:
            base = line.split("FHIR server at ", 1)[1].split()[0]
            break
    else:
        raise RuntimeError(f"server process exited with {process.wait()} before announcing its URL")
    requests.get(base + "metadata", timeout=30).raise_for_status()
    return process, base, time.perf_counter() - started


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def query_makers(seed: int, scale: str) -> dict[str, Callable[[random.Random], str]]:
    """URL builders (relative to the base) for the query shapes agents and graders send."""
    patients = build_population(seed=seed, scale=scale).patients
    with_data = [p for p in patients if p.has_data]

    def patient_code(rng: random.Random) -> str:
        return f"Observation?code=MG&patient={rng.choice(with_data).mrn}&_format=json"

    def patient_category_date(rng: random.Random) -> str:
        return (
            f"Observation?patient={rng.choice(with_data).mrn}&category=vital-signs&date=ge{NOW_MINUS_24H}&_format=json"
        )

    def name_birthdate(rng: random.Random) -> str:
        p = rng.choice(patients)
        return f"Patient?given={p.given[0]}&family={p.family}&birthdate={p.birth_date.isoformat()}&_format=json"

    def identifier(rng: random.Random) -> str:
        return f"Patient?identifier={rng.choice(patients).mrn}&_format=json"

    def grader_count_5000(rng: random.Random) -> str:
        return f"Observation?patient={rng.choice(with_data).mrn}&code=GLU&_count=5000&_format=json"

    return {
        "Observation patient+code": patient_code,
        "Observation patient+category+date": patient_category_date,
        "Patient name+birthdate": name_birthdate,
        "Patient identifier": identifier,
        "Observation _count=5000 (grader)": grader_count_5000,
    }


def latencies(base: str, make: Callable[[random.Random], str], n: int, rng: random.Random) -> list[float]:
    session = requests.Session()
    timings = []
    for _ in range(n):
        url = base + make(rng)
        started = time.perf_counter()
        response = session.get(url, headers={"Host": "localhost:8080"}, timeout=60)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


def throughput(base: str, makers: list[Callable[[random.Random], str]], clients: int, seconds: float) -> float:
    """Requests/s of `clients` threads, each with its own keep-alive session, for `seconds`."""
    counts = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        rng, session = random.Random(index), requests.Session()
        while time.perf_counter() < deadline:
            session.get(base + rng.choice(makers)(rng), timeout=60).raise_for_status()
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="full", choices=["small", "medium", "full"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache root to build into (default: a fresh temporary one, so the first build is measured)",
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per latency measurement (default 200)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for requests/s (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the requests/s run (default 10)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="medbench-bench-") as scratch:
        cache_dir = args.cache_dir or Path(scratch)
        was_cached = database_path(seed=args.seed, scale=args.scale, cache_dir=cache_dir).is_file()
        started = time.perf_counter()
        db = ensure_database(seed=args.seed, scale=args.scale, cache_dir=cache_dir)
        first_build = "already cached, not measured" if was_cached else round(time.perf_counter() - started, 1)

        started = time.perf_counter()
        with FhirServer(ensure_database(seed=args.seed, scale=args.scale, cache_dir=cache_dir)) as server:
            requests.get(server.base_url + "metadata", timeout=30).raise_for_status()
            in_process_start = time.perf_counter() - started

        process, base, process_start = start_server_process(db)
        try:
            rng = random.Random(0)
            makers = query_makers(args.seed, args.scale)
            rows = []
            for name, make in makers.items():
                timings = latencies(base, make, args.requests, rng)
                rows.append([name, round(statistics.median(timings), 2), round(percentile(timings, 0.95), 2)])
            rps = throughput(base, list(makers.values()), args.clients, args.seconds)
            rss = rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)

        figures = {
            "scale": args.scale,
            "first_build_s": first_build,
            "cached_start_in_process_s": round(in_process_start, 3),
            "cached_start_serve_command_s": round(process_start, 3),
            "db_size_mib": round(db.stat().st_size / 2**20, 1),
            "server_rss_mib": round(rss, 1),
            "latency_ms": {row[0]: {"p50": row[1], "p95": row[2]} for row in rows},
            f"requests_per_s_{args.clients}_clients": round(rps, 1),
        }
    print(tabulate([[k, v] for k, v in figures.items() if k != "latency_ms"], tablefmt="github"))
    print()
    print(tabulate(rows, headers=["query", "p50 ms", "p95 ms"], tablefmt="github"))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
