"""How far the harness stays out of the way: concurrency against a slow model, its own overhead, replay, cold start.

One run prints every figure of the harness-overhead issue, each with the machine's load:

1. Against a slow model: the built-in reference model served standalone with a fixed delay per
   answer (`python -m medbench.models serve --latency S`), the 300 generated tasks through pytest
   at `--concurrency 32`, `--concurrency 64` and `-n 2 --concurrency 32`: process wall (start-up
   included), pytest's own time, the ideal (model calls x delay / attempts in flight), both
   ratios, CPU seconds, the peak RSS of the largest process, and the RSS of the pytest process
   sampled over the run (growth shows there).
2. No delay (the built-in endpoint), serial: the harness's own cost per 300 tasks.
3. Replay of the shipped cassettes (`--record-mode=none`): no environment, no model.
4. Cold start: a run from an empty cache (`MEDBENCH_CACHE_DIR=<empty>`), whose `setup_seconds`
   is the full-scale EHR build.

Runs 1-3 need a warm cache for the chosen scale (the cold run warms nothing: its cache is a
temporary folder, removed afterwards). Figures go in the issue note, never into timed test
assertions. Wall times on a shared machine follow its load; the CPU seconds do much less.

    python scripts/bench_concurrency.py                     # everything, 1 s delay
    python scripts/bench_concurrency.py --levels 32 --workers 0 --no-cold --no-replay
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs each command as a child and prints, as its last stderr line, the children's CPU seconds and
# peak RSS (the largest process among them and their waited-for descendants: xdist workers too).
_MEASURED = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(f'MEASURED cpu={usage.ru_utime + usage.ru_stime:.2f} maxrss_kib={usage.ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@dataclass
class Run:
    wall: float
    own: float | None
    cpu: float
    peak_mib: float
    stdout: str
    returncode: int
    rss_samples: list[float] = field(default_factory=list)  # MiB of the pytest process over the run
    results: Path | None = None

    def rows(self) -> list[dict]:
        assert self.results is not None
        return [json.loads(line) for p in self.results.rglob("runs.jsonl") for line in p.read_text().splitlines()]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def serve(delay: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "medbench.models", "serve", "--port", "0", "--latency", str(delay)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"at (http://\S+/v1)", line)
    if match is None:
        process.kill()
        raise SystemExit(f"the model server did not start: {line!r}")
    return process, match.group(1)


def _rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else None


def run_pytest(args: list[str], results: Path, env: dict[str, str] | None = None) -> Run:
    """One pytest session, measured: wall, pytest's own 'passed in', CPU, peak RSS, RSS samples."""
    pytest_command = [
        sys.executable,
        "-m",
        "pytest",
        "tests_bench",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--results-dir={results}",
        *args,
    ]
    command = [sys.executable, "-c", _MEASURED, *pytest_command]
    samples: list[float] = []
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    done = threading.Event()

    def sample() -> None:  # the measuring wrapper's one child is the pytest process
        while not done.wait(0.5):
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            try:
                pids = [int(p) for p in children.read_text().split()]
            except OSError:
                continue
            if pids and (rss := _rss_mib(pids[0])) is not None:
                samples.append(rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    own = re.search(r"(\d+) passed.* in ([\d.]+)s", stdout)
    measured = re.search(r"MEASURED cpu=([\d.]+) maxrss_kib=(\d+)", stderr)
    if process.returncode != 0:
        print(stdout[-2000:], stderr[-2000:], file=sys.stderr)
    return Run(
        wall,
        float(own.group(2)) if own else None,
        float(measured.group(1)) if measured else float("nan"),
        int(measured.group(2)) / 1024 if measured else float("nan"),
        stdout,
        process.returncode,
        samples,
        results,
    )


def growth(samples: list[float]) -> str:
    """RSS of the pytest process at a quarter, half, three quarters and the end of the run."""
    if len(samples) < 4:
        return "-"
    picks = [samples[len(samples) * k // 4 - 1] for k in (1, 2, 3, 4)]
    return "/".join(f"{value:.0f}" for value in picks)


def slow_model_runs(args: argparse.Namespace, base: list[str]) -> None:
    runs = [(f"--concurrency {level}", [f"--concurrency={level}"], level) for level in args.levels]
    if args.workers:
        per_worker = args.worker_concurrency
        runs.append(
            (
                f"-n {args.workers} --concurrency {per_worker}",
                [f"-n={args.workers}", f"--concurrency={per_worker}"],
                args.workers * per_worker,
            )
        )
    print(f"\n1. {args.delay:g} s per model answer (reference model served standalone), 300 generated tasks")
    print("   wall: the whole pytest process, start-up included; pytest: its own 'passed in' time;")
    print("   RSS over run: the pytest process at 1/4, 1/2, 3/4 and the end of the run (MiB)")
    print(
        f"   {'run':<26}{'wall s':>8}{'pytest s':>10}{'ideal s':>9}{'ratio':>7}{'ratio(pytest)':>15}{'CPU s':>7}"
        f"{'passed':>8}{'calls':>7}{'peak MiB':>10}  {'RSS over run':<18}{'machine'}"
    )
    server, url = serve(args.delay)
    try:
        for label, extra, in_flight in runs:
            with tempfile.TemporaryDirectory() as results:
                run = run_pytest(
                    [*base, "--disable-recording", "--model=reference-remote", f"--base-url={url}", *extra],
                    Path(results),
                )
                rows = run.rows()
            calls, passed = sum(r["model_calls"] for r in rows), sum(r["correct"] for r in rows)
            ideal = calls * args.delay / in_flight
            own = run.own or float("nan")
            print(
                f"   {label:<26}{run.wall:>8.1f}{own:>10.1f}{ideal:>9.1f}{run.wall / ideal:>7.2f}{own / ideal:>15.2f}"
                f"{run.cpu:>7.1f}{passed:>8}{calls:>7}{run.peak_mib:>10.0f}  {growth(run.rss_samples):<18}{load()}"
            )
    finally:
        server.terminate()
        server.wait()


def no_delay_run(base: list[str]) -> None:
    print("\n2. no delay (built-in endpoint), serial, warm cache")
    with tempfile.TemporaryDirectory() as results:
        run = run_pytest([*base, "--disable-recording", "--model=reference"], Path(results))
        passed = sum(r["correct"] for r in run.rows())
    print(
        f"   pytest's own {run.own} s, process wall {run.wall:.1f} s, CPU {run.cpu:.1f} s, "
        f"peak {run.peak_mib:.0f} MiB, {passed} passed; {load()}"
    )


def replay_run(base: list[str], model: str) -> None:
    print(f"\n3. replay of the shipped cassettes (cassettes/{model}, --record-mode=none), serial")
    with tempfile.TemporaryDirectory() as results:
        run = run_pytest([*base, f"--model={model}", "--record-mode=none"], Path(results))
        passed = len(run.rows())
    print(
        f"   pytest's own {run.own} s, process wall {run.wall:.1f} s, CPU {run.cpu:.1f} s, "
        f"{passed} attempts recorded; {load()}"
    )


def cold_run(base: list[str], workers: int) -> None:
    print(f"\n4. cold start: empty cache, reference model, -n {workers} (setup_seconds = the full EHR build)")
    cache = Path(tempfile.mkdtemp(prefix="medbench-cold-cache-"))
    try:
        with tempfile.TemporaryDirectory() as results:
            extra = [f"-n={workers}"] if workers else []
            run = run_pytest(
                [*base, "--disable-recording", "--model=reference", *extra],
                Path(results),
                env={"MEDBENCH_CACHE_DIR": str(cache)},
            )
            summary = json.loads(next(Path(results).rglob("summary.json")).read_text())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(
        f"   setup_seconds {summary.get('setup_seconds')} (the build), elapsed_seconds "
        f"{summary.get('elapsed_seconds')}, process wall {run.wall:.1f} s, CPU {run.cpu:.1f} s, "
        f"peak {run.peak_mib:.0f} MiB, {summary.get('correct')}/{summary.get('total')} correct; {load()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per model answer (default 1)")
    parser.add_argument("--levels", type=int, nargs="+", default=[32, 64], help="concurrency levels, one process")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers for the -n run (0 to skip it)")
    parser.add_argument("--worker-concurrency", type=int, default=32, help="--concurrency of the -n run (default 32)")
    parser.add_argument("--scale", default="full", help="--ehr-scale (default full; its cache must be warm)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-delay run")
    parser.add_argument("--no-replay", action="store_true", help="skip the replay run")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start run")
    parser.add_argument("--replay-model", default="reference", help="cassettes/<model> to replay (default reference)")
    args = parser.parse_args()
    base = [f"--ehr-scale={args.scale}"]
    print(f"medbench harness benchmark: {os.cpu_count()} CPUs, {load()}, scale {args.scale}")
    if args.levels or args.workers:
        slow_model_runs(args, base)
    if not args.no_baseline:
        no_delay_run(base)
    if not args.no_replay:
        replay_run([], args.replay_model)
    if not args.no_cold:
        cold_run(base, args.workers)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
