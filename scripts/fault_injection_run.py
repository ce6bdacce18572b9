"""Campaign: the whole benchmark through a fault-injecting proxy in front of the reference model.

    python scripts/fault_injection_run.py                       # 30% faulty calls, 300 generated tasks, -n 2
    python scripts/fault_injection_run.py --fault-rate 0.5 --timeout 1 -n 4 -- -m task5

The built-in reference endpoint runs in this process; a `FaultProxy` in front of it answers a
share of the requests (`--fault-rate`) with a 429, a 500/502/503, a stall (no answer until the
client times out), a dropped connection or a 200 whose JSON body is cut mid-string, the preflight
`GET /models` included (drops). `pytest tests_bench` then runs every task against the proxy as
an ordinary endpoint (`--model=reference-faulty --base-url=<proxy>`), live (`--disable-recording`).
A short `--timeout` keeps stalls cheap; `--timeout-retries` is raised above its default of 1 so
that two stalls in one call do not end a task (the point is that faults cost retries, not attempts).

Reports how many attempts were recorded out of how many, the accuracy, the statuses, what the
proxy injected, and what the run counted (retries, timeouts, time lost). Exit 0 when every
attempt was recorded with no infrastructure failure. A campaign, not a test: nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medbench.models.builtin.server import MODEL_ID, ReferenceServer  # noqa: E402
from medbench.testing.fault_proxy import FaultProxy, random_faults  # noqa: E402

MODEL = "reference-faulty"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of requests that meet a fault")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--timeout", type=float, default=2.0, help="pytest --timeout (seconds per attempt)")
    parser.add_argument("--timeout-retries", type=int, default=3, help="pytest --timeout-retries")
    parser.add_argument("--retry-budget", type=float, default=300.0, help="pytest --retry-budget (seconds)")
    parser.add_argument("-n", "--workers", default="2", help="pytest-xdist workers")
    parser.add_argument("--results-dir", type=Path, default=None, help="keep the results here (default: a temp dir)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="medbench-faults-") as scratch:
        results = args.results_dir or Path(scratch)
        with (
            ReferenceServer() as reference,
            FaultProxy(
                reference.base_url,
                random_faults(args.fault_rate, args.seed),
                stall_s=max(10.0, 3 * args.timeout),
                rewrite_model=MODEL_ID,
            ) as proxy,
        ):
            command = [
                sys.executable,
                "-m",
                "pytest",
                "tests_bench",
                f"--model={MODEL}",
                f"--base-url={proxy.base_url}",
                f"--timeout={args.timeout}",
                f"--timeout-retries={args.timeout_retries}",
                f"--retry-budget={args.retry_budget}",
                "--disable-recording",
                f"--results-dir={results}",
                "-n",
                str(args.workers),
                "-q",
                "-p",
                "no:cacheprovider",
                *args.pytest_args,
            ]
            print("running:", " ".join(command[1:]), flush=True)
            started = time.perf_counter()
            completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - started
            injected, requests = dict(proxy.counts), proxy.requests
        summary_path = results / MODEL / "summary.json"
        if not summary_path.exists():
            print(completed.stdout[-4000:], completed.stderr[-2000:], sep="\n")
            print(f"no summary written (pytest exited {completed.returncode})", file=sys.stderr)
            return 1
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return report(summary, injected, requests, wall, completed)


def report(
    summary: dict, injected: dict[str, int], requests: int, wall: float, completed: subprocess.CompletedProcess[str]
) -> int:
    calls = summary.get("model_calls", {})
    faults = sum(injected.values())
    retry_lines = sum(1 for line in completed.stdout.splitlines() if line.startswith("medbench: task"))
    print(
        f"recorded {summary['total']}/{summary['expected_total']} attempts, accuracy {summary['accuracy']:.1f}% "
        f"({summary['correct']} correct), statuses {summary['status_counts']}"
    )
    print(
        f"proxy: {requests} requests, {faults} faults injected ({faults / max(requests, 1):.1%}): "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(injected.items()))
    )
    print(
        f"run: {calls.get('calls')} model calls, {calls.get('retries')} retries, {calls.get('timeouts')} timeouts, "
        f"{calls.get('time_lost_s')} s lost to failed attempts and waits; {retry_lines} retry lines printed; "
        f"wall {wall:.0f} s; pytest exit {completed.returncode}"
    )
    for line in completed.stdout.splitlines():
        if line.startswith("medbench: --resume"):
            print(line)
    ok = summary["total"] == summary["expected_total"] and summary["infrastructure_failures"] == 0
    if not ok:
        print("\n".join(line for line in completed.stdout.splitlines() if "incorrect:" in line)[-3000:])
    return 0 if ok and completed.returncode in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
