"""V2 seating: which patients a v2 task set names, and which branch each task must meet.

Official v2 tasks are seated by situation (medbench/ehr/v2/situations.py): each task's patient
gets a chart whose branch for that category is the seated one, measured from the task's own "now".
Any other v2 task file only needs its patients to exist (their charts are free). The population
never reads task files itself; it reads a V2Seating."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from medbench.ehr.v2.branches import stated_now
from medbench.ehr.v2.charts import default_now
from medbench.ehr.v2.situations import official_v2_situations
from medbench.tasks.task import Task, canonical_sha256

V2_SEATING_VERSION = 1
"""Part of the seating digest (the cache key): bump it whenever seating writes other data."""

Placement = tuple[int, str, datetime]


@dataclass(frozen=True)
class V2Seating:
    patients: tuple[tuple[str, tuple[Placement, ...]], ...]
    """Every MRN the tasks name, in first-appearance order, with its fixed (category, branch, now)."""
    kind: str = "v2-situations"
    """"v2-situations" (official tasks in their labelled branches) or "v2-tasks" (patients only)."""

    @classmethod
    def for_tasks(cls, tasks: Sequence[Task]) -> V2Seating:
        situations = official_v2_situations(tasks)
        fixed: dict[str, list[Placement]] = {}
        for index, task in enumerate(tasks):
            if not task.eval_MRN:
                raise ValueError(f"v2 task {task.id} names no patient (eval_MRN)")
            placements = fixed.setdefault(task.eval_MRN, [])
            if situations is None:
                continue
            if any(c == task.category for c, _, _ in placements):
                raise ValueError(
                    f"v2 task {task.id}: patient {task.eval_MRN} is seated twice in category {task.category}"
                )
            now = stated_now(task.context) if task.category in (3, 4, 9, 10) else default_now(task.category)
            placements.append((task.category, situations[index].branch, now))
        kind = "v2-situations" if situations is not None else "v2-tasks"
        return cls(tuple((mrn, tuple(sorted(p))) for mrn, p in fixed.items()), kind)

    @property
    def mrns(self) -> tuple[str, ...]:
        return tuple(mrn for mrn, _ in self.patients)

    def fixed_of(self, mrn: str) -> dict[int, tuple[str, datetime]]:
        return {c: (branch, now) for c, branch, now in dict(self.patients)[mrn]}

    @property
    def digest(self) -> str:
        """Stable hex hash of the seating, for cache keys."""
        return canonical_sha256(
            {
                "version": V2_SEATING_VERSION,
                "kind": self.kind,
                "patients": [
                    [mrn, [[c, b, n.isoformat()] for c, b, n in placements]] for mrn, placements in self.patients
                ],
            }
        )


def v2_embedded_seating(tasks_spec: str, tasks: Sequence[Task]) -> V2Seating | None:
    """The seating the embedded server uses for a v2 task set: none for generated-v2 (its tasks were
    drawn from the unseated cohort), by situation for the official v2 tasks, patients only for any
    other v2 task file."""
    return None if tasks_spec == "generated-v2" else V2Seating.for_tasks(tasks)


def v2_seating_label(seating: V2Seating | None) -> str:
    """What run summaries record as `environment.seating`: none, v2-situations or v2-tasks."""
    return "none" if seating is None else seating.kind
