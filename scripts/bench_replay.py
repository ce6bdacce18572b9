"""Benchmark: replay the shipped cassettes serially and under xdist; wall time and per-task overhead.

    python scripts/bench_replay.py                    # cassettes/reference, serial and -n 2
    python scripts/bench_replay.py --workers 1 2 4 --repeat 3

Each configuration runs `pytest tests_bench --model=MODEL --record-mode=none` into a scratch
results folder. Session overhead (interpreter, plugin, task-set load, collection) is measured
with `--collect-only` and subtracted, so "per task" is the cost of replaying one cassette:
load and parse it, run the agent loop and the grader against it, and write the result lines.
A benchmark, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_session(extra: list[str], cassettes: Path, model: str) -> float:
    with tempfile.TemporaryDirectory(prefix="medbench-bench-") as scratch:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "tests_bench",
            f"--model={model}",
            "--record-mode=none",
            f"--cassettes-dir={cassettes}",
            f"--results-dir={scratch}",
            "-q",
            "-p",
            "no:cacheprovider",
            *extra,
        ]
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"pytest {' '.join(extra)} exited {completed.returncode}:\n{completed.stdout[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="reference")
    parser.add_argument("--cassettes-dir", type=Path, default=ROOT / "cassettes")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="1 means serial (no xdist)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (the median is reported)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from medbench.cassettes.files import NOT_CASSETTES

    cassettes = args.cassettes_dir.resolve()
    folder = cassettes / args.model
    tasks = len([p for p in folder.glob("*.json") if p.name not in NOT_CASSETTES])
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{tasks} cassettes in {folder}, {size / 1e6:.1f} MB ({size / max(tasks, 1) / 1e3:.0f} kB per task)")
    startup = statistics.median(timed_session(["--collect-only"], cassettes, args.model) for _ in range(args.repeat))
    print(f"session start and collection (--collect-only): {startup:.2f} s")
    print(f"{'workers':>8} {'wall s':>8} {'per task ms':>12} {'tasks/s':>8}")
    for workers in args.workers:
        extra = [] if workers == 1 else ["-n", str(workers)]
        wall = statistics.median(timed_session(extra, cassettes, args.model) for _ in range(args.repeat))
        per_task = (wall - startup) / max(tasks, 1)
        print(f"{workers if workers > 1 else 'serial':>8} {wall:8.2f} {per_task * 1000:12.1f} {tasks / wall:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
