"""Compare a do-nothing run on MedAgentBench v2 with the silent-pass labels (the silent-finish ceiling).

    pytest tests_bench --model=do-nothing --tasks=v2 --official-dir=../shared/medagentbench_v2 -n 2
    python scripts/check_v2_silent.py results/do-nothing [--labels ../shared/medagentbench_v2/silent_labels.jsonl]

Prints the passes per category beside the labels' count and exits 1 unless the run passed exactly
the tasks the labels mark as silent passes (and every labelled task was run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = ROOT.parent / "shared" / "medagentbench_v2" / "silent_labels.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_folder", type=Path, help="the do-nothing run's results folder (holding runs.jsonl)")
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    args = parser.parse_args(argv)
    passed: dict[str, bool] = {}
    for line in (args.run_folder / "runs.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        passed[record["task_id"]] = bool(record["correct"])  # the last line per task wins
    labels = {}
    for line in args.labels.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            labels[record["id"]] = bool(record["silent_pass"])
    by_category: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    for task_id, silent in labels.items():
        category = task_id.rsplit("_", 1)[0]
        by_category[category] += passed.get(task_id, False)
        labelled[category] += silent
    for category in sorted(labelled, key=lambda c: int(c.removeprefix("task"))):
        print(f"{category:7} passed {by_category[category]:3}   labelled silent {labelled[category]:3}")
    total = sum(by_category.values())
    print(
        f"total   passed {total:3} of {len(labels)} ({100 * total / len(labels):.1f} %), "
        f"labelled silent {sum(labelled.values())} (published ceiling 41.7 %)"
    )
    missing = sorted(set(labels) - set(passed))
    differing = sorted(t for t in labels if t in passed and passed[t] != labels[t])
    if missing or differing:
        print(f"not run: {missing[:20]}; differing from the labels: {differing[:20]}", file=sys.stderr)
        return 1
    print("the run passed exactly the tasks the labels mark as silent passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
