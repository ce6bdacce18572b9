"""Derive medbench/data/v2_situations.jsonl: the branch each official v2 task is seated in.

Input: the third-party silent-finish labels (../shared/medagentbench_v2/silent_labels.jsonl: for each
official v2 task, whether doing nothing passes on the official image). Output, one line per task:
task_id, category, mrn, silent (the label) and branch (ours: a branch of medbench/ehr/v2/branches.py
that is silent exactly when the label is). Which silent or action branch a task gets is our choice,
spread over the category's branches by a hash of the task id, so the seated EHR exercises them all.

    python scripts/derive_v2_situations.py [--labels PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from medbench.ehr.v2.branches import BRANCHES, is_silent

ROOT = Path(__file__).resolve().parents[1]


def choose_branch(task_id: str, category: int, silent: bool) -> str:
    options = [b for b in BRANCHES[category] if is_silent(category, b) == silent]
    if not options:
        raise ValueError(f"{task_id}: category {category} has no {'silent' if silent else 'action'} branch")
    digest = int.from_bytes(hashlib.sha256(f"medbench-v2-seat|{task_id}".encode()).digest()[:8], "big")
    return options[digest % len(options)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--labels", type=Path, default=ROOT.parent / "shared" / "medagentbench_v2" / "silent_labels.jsonl"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "medbench" / "data" / "v2_situations.jsonl")
    args = parser.parse_args()
    lines = []
    for raw in args.labels.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        label = json.loads(raw)
        category = int(label["task_type"].removeprefix("task"))
        silent = bool(label["silent_pass"])
        record = {
            "task_id": label["id"],
            "category": category,
            "mrn": label["eval_MRN"],
            "silent": silent,
            "branch": choose_branch(label["id"], category, silent),
        }
        lines.append(json.dumps(record))
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} situations to {args.out}")


if __name__ == "__main__":
    main()
