"""Check which branch every official v2 task meets on a FHIR server, through the v2 graders' reads.

    python scripts/check_v2_situations.py [--fhir-url http://localhost:8080/fhir/] [--official-dir ../shared/medagentbench_v2]

Without --fhir-url it starts the embedded server over the seated v2 EHR. It prints, per category,
the branches met, how many tasks need no action (compare: 121 of 300 on the official image, per the
third-party silent-finish labels) and every task whose branch differs from
medbench/data/v2_situations.jsonl. Exit status 1 when any differs."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import requests

from medbench.ehr.v2.branches import is_silent, stated_now
from medbench.ehr.v2.observe import branch_now, observe_branch
from medbench.ehr.v2.seating import V2Seating
from medbench.ehr.v2.situations import load_v2_situations
from medbench.environment.provision import embedded_v2_server
from medbench.tasks.v2 import load_v2

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-url", help="FHIR base URL (trailing slash); default: the embedded seated v2 EHR")
    parser.add_argument("--official-dir", type=Path, default=ROOT.parent / "shared" / "medagentbench_v2")
    args = parser.parse_args()
    tasks = load_v2(official_dir=args.official_dir).tasks
    session = requests.Session()
    server = nullcontext() if args.fhir_url else embedded_v2_server(seating=V2Seating.for_tasks(tasks))
    with server as running:
        base = args.fhir_url or running.base_url  # type: ignore[union-attr]

        def get_json(query: str) -> dict[str, Any]:
            response = session.get(base + query, timeout=60)
            response.raise_for_status()
            return dict(response.json())

        situations = load_v2_situations()
        met: Counter[tuple[int, str]] = Counter()
        differing = []
        for task in tasks:
            branch = observe_branch(
                task.category, task.eval_MRN or "", branch_now(task.category, stated_now(task.context)), get_json
            )
            met[(task.category, branch)] += 1
            if branch != situations[task.id].branch:
                differing.append(f"{task.id}: {branch} (seated: {situations[task.id].branch})")
    for (category, branch), count in sorted(met.items()):
        print(f"task{category:<3} {branch:28} {count:3}")
    silent = sum(count for (category, branch), count in met.items() if is_silent(category, branch))
    print(f"nothing to do: {silent} of {len(tasks)} tasks")
    print("\n".join(differing) if differing else "every task meets its seated branch")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
