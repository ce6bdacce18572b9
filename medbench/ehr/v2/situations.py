"""The branch each official v2 task is seated in, read from medbench/data/v2_situations.jsonl.

The file holds our own derived facts: task id, category, patient MRN, whether doing nothing passes
that task on the official image (as measured by a third party, clinKriya; the best available
facts, which cannot be re-derived here) and the branch we seat it in (silent exactly when the
label is). scripts/derive_v2_situations.py wrote it from the shared labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from medbench.package_data import read_text
from medbench.tasks.task import Task

SITUATIONS_FILE = "v2_situations.jsonl"


@dataclass(frozen=True)
class V2Situation:
    task_id: str
    category: int
    mrn: str
    silent: bool
    branch: str


@lru_cache(maxsize=1)
def load_v2_situations() -> dict[str, V2Situation]:
    """Every official v2 task's seating by task id (file order)."""
    records = [json.loads(line) for line in read_text(SITUATIONS_FILE).splitlines() if line.strip()]
    return {
        r["task_id"]: V2Situation(r["task_id"], int(r["category"]), r["mrn"], bool(r["silent"]), r["branch"])
        for r in records
    }


def official_v2_situations(tasks: Sequence[Task]) -> list[V2Situation] | None:
    """The situations of these tasks when every one is an official v2 task (same id, category and
    patient), else None: other v2 task files get free charts for their patients."""
    known = load_v2_situations()
    matched = [known.get(task.id) for task in tasks]
    if not tasks or any(
        s is None or s.category != t.category or s.mrn != t.eval_MRN for t, s in zip(tasks, matched, strict=True)
    ):
        return None
    return [s for s in matched if s is not None]
