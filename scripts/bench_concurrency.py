"""How close `--concurrency` gets to the ideal wall time against a slow model endpoint.

Serves the built-in reference model standalone with a fixed delay per answer
(`python -m medbench.models serve --latency S`), runs the 300 generated tasks through pytest
against it at several concurrency levels, and prints wall time, the ideal time (model calls x
delay / attempts in flight), their ratio and the peak RSS of the largest pytest process; then the
harness's own overhead with no delay. Needs a warm EHR cache for the chosen scale (run the
benchmark once first); figures go in the issue note, never into timed test assertions.

    python scripts/bench_concurrency.py                       # 1 s delay; 8, 32 and -n 2 x 32
    python scripts/bench_concurrency.py --delay 0.5 --levels 16 64 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def serve(delay: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "medbench.models", "serve", "--port", "0", "--latency", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"at (http://\S+/v1)", line)
    if match is None:
        process.kill()
        raise SystemExit(f"the model server did not start: {line!r}")
    return process, match.group(1)


def run_pytest(args: list[str], results: Path) -> tuple[float, float | None, int, int]:
    """(wall s, pytest's own 'passed in' s, model calls, passed attempts) of one benchmark run."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests_bench",
        "-q",
        "-p",
        "no:cacheprovider",
        "--disable-recording",
        f"--results-dir={results}",
        *args,
    ]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    own = re.search(r"(\d+) passed.* in ([\d.]+)s", completed.stdout)
    rows = [json.loads(line) for path in results.rglob("runs.jsonl") for line in path.read_text().splitlines()]
    if completed.returncode != 0:
        print(completed.stdout[-2000:], completed.stderr[-2000:], file=sys.stderr)
    return (
        wall,
        float(own.group(2)) if own else None,
        sum(r["model_calls"] for r in rows),
        sum(r["correct"] for r in rows),
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per model answer (default 1)")
    parser.add_argument("--levels", type=int, nargs="+", default=[8, 32], help="concurrency levels, one process")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers for the last run (0 to skip)")
    parser.add_argument("--scale", default="full", help="--ehr-scale (default full; its cache must be warm)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-delay runs")
    args = parser.parse_args()
    base = [f"--ehr-scale={args.scale}"]
    runs = [(f"--concurrency {level}", [f"--concurrency={level}"], level) for level in args.levels]
    if args.workers:
        top = max(args.levels)
        runs.append(
            (
                f"-n {args.workers} --concurrency {top}",
                [f"-n={args.workers}", f"--concurrency={top}"],
                args.workers * top,
            )
        )
    print(f"300 generated tasks, {args.delay:g} s per model answer, EHR scale {args.scale}")
    print("wall: the whole pytest process (start-up included); pytest: pytest's own 'passed in' time")
    print(
        f"{'run':<26}{'wall s':>8}{'pytest s':>10}{'ideal s':>9}{'ratio':>7}{'ratio (pytest)':>16}{'passed':>8}"
        f"{'calls':>7}{'peak RSS MiB':>14}"
    )
    server, url = serve(args.delay)
    try:
        for label, extra, in_flight in runs:
            with tempfile.TemporaryDirectory() as results:
                wall, own, calls, passed = run_pytest(
                    [*base, "--model=reference-remote", f"--base-url={url}", *extra], Path(results)
                )
            ideal = calls * args.delay / in_flight
            own = own or float("nan")
            print(
                f"{label:<26}{wall:>8.1f}{own:>10.1f}{ideal:>9.1f}{wall / ideal:>7.2f}{own / ideal:>16.2f}{passed:>8}"
                f"{calls:>7}{peak_rss_mib():>14.0f}"
            )
    finally:
        server.terminate()
        server.wait()
    if args.no_baseline:
        return 0
    print("no delay (built-in endpoint), warm cache:")
    for label, extra in (
        ("serial", []),
        ("--concurrency 8", ["--concurrency=8"]),
        ("-n 2 --concurrency 8", ["-n=2", "--concurrency=8"]),
    ):
        with tempfile.TemporaryDirectory() as results:
            wall, own, _, passed = run_pytest([*base, "--model=reference", *extra], Path(results))
        print(f"  {label:<24} pytest's own {own} s, process wall {wall:.1f} s, {passed} passed")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
