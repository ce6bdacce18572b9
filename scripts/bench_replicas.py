"""What replicas and shards cost and buy: wall time of one run over 1 vs 2 replicas of a model whose
servers each answer a limited number of calls at once, and the time a merge of N shards takes.

Each replica is `python -m medbench.models serve --latency S --threads T` (T calls at a time,
S seconds each: a stand-in for one GPU's batch). With `--concurrency` above T, one replica is the
bottleneck and a second one should halve the wall time. Then the same run is cut into N shards
(N processes at once, the pytest-free runner) over the two replicas and merged; the script prints
each shard's wall time, the merge's, and checks the merged verdicts against the single run's.
Figures go in the issue note, never into timed test assertions.

    python scripts/bench_replicas.py                          # 0.1 s per answer, 4 at a time, 300 tasks
    python scripts/bench_replicas.py --latency 0.2 --threads 2 --concurrency 8 --shards 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medbench.results.merge import merge_runs
from medbench.results.writer import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers.model_servers import served_models  # noqa: E402

RUN = """
import json, sys
from pathlib import Path
from medbench.runner import run_benchmark
from medbench.settings import Settings
from medbench.sharding import parse_shard
urls, results, concurrency, shard = json.loads(sys.argv[1])
summary = run_benchmark(Settings(model="served", base_url=urls[0], base_urls=tuple(urls) if len(urls) > 1 else (),
                                 ehr_scale="small", concurrency=concurrency, results_dir=Path(results),
                                 shard=parse_shard(shard, {})))
print(json.dumps({"total": summary["total"], "correct": summary["correct"], "replicas": summary.get("replicas")}))
"""


def run(urls: list[str], results: Path, concurrency: int, shard: str | None = None) -> subprocess.Popen[str]:
    arguments = json.dumps([urls, str(results), concurrency, shard])
    return subprocess.Popen([sys.executable, "-c", RUN, arguments], stdout=subprocess.PIPE, text=True, cwd=ROOT)


def timed(process: subprocess.Popen[str]) -> dict:
    output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"run failed ({process.returncode}): {output[-2000:]}")
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer (default 0.1)")
    parser.add_argument("--threads", type=int, default=4, help="calls one replica answers at once (default 4)")
    parser.add_argument("--concurrency", type=int, default=8, help="attempts in flight (default 8)")
    parser.add_argument("--shards", type=int, default=3, help="shards of the sharded run (default 3)")
    args = parser.parse_args()
    options = ["--latency", str(args.latency), "--threads", str(args.threads)]
    with tempfile.TemporaryDirectory() as tmp, served_models(options, options) as replicas:
        root = Path(tmp)
        urls = [served.base_url for served in replicas]
        walls = {}
        for label, chosen in (("1 replica", urls[:1]), ("2 replicas", urls)):
            started = time.perf_counter()
            result = timed(run(chosen, root / label.replace(" ", "-"), args.concurrency))
            walls[label] = time.perf_counter() - started
            split = ", ".join(f"{r['share']:.0%}" for r in result["replicas"] or [])
            print(
                f"{label}: {result['correct']}/{result['total']} correct in {walls[label]:.1f} s"
                + (f" (calls split {split})" if split else "")
            )
        print(f"speed-up with 2 replicas: {walls['1 replica'] / walls['2 replicas']:.2f}x")
        started = time.perf_counter()
        processes = [
            run(urls, root / f"shard-{i}", args.concurrency, f"{i}/{args.shards}") for i in range(1, args.shards + 1)
        ]
        for process in processes:
            timed(process)
        print(f"{args.shards} shards at once over 2 replicas: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        merged = merge_runs([root / f"shard-{i}" / "served" for i in range(1, args.shards + 1)], root / "merged")
        print(
            f"merge of {args.shards} shards ({merged.summary['total']} attempts): {time.perf_counter() - started:.2f} s"
        )
        single = {
            (r["task_id"], r["attempt"]): r["correct"]
            for r in read_jsonl(root / "2-replicas" / "served" / "runs.jsonl")
        }
        again = {(r["task_id"], r["attempt"]): r["correct"] for r in read_jsonl(root / "merged" / "runs.jsonl")}
        print(f"merged verdicts equal the single run's: {single == again}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
