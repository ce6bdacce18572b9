"""The v2 cohort: the patients v2 tasks are about, each with a v2 chart.

Unseated (what `--tasks=generated-v2` draws from): COHORT_SIZE patients whose charts spread every
category over all of its branches, so a generated task set can cover each branch. Seated (official
v2 tasks): exactly the patients the tasks name, each task's category fixed to its seated branch,
the other categories free. Cheap to build: charts are facts; resources are written later."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime

from medbench.ehr.demographics import Demographics, make_demographics
from medbench.ehr.v2.branches import BRANCHES
from medbench.ehr.v2.charts import V2Chart, default_now, free_chart, random_hr_now
from medbench.ehr.v2.seating import V2Seating

COHORT_SIZE = 60
"""Unseated cohort size: 30 tasks per category drawn over up to five branches need that many."""
COHORT_MRNS = (7000000, 9899999)
"""Unseated cohort MRNs are drawn here, above the v1 population's range, so they never collide."""


def _rng(seed: int, stream: str, index: int | str) -> random.Random:
    digest = hashlib.sha256(f"medbench-ehr-v2|{seed}|{stream}|{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class V2Patient:
    demographics: Demographics
    chart: V2Chart

    @property
    def mrn(self) -> str:
        return self.demographics.mrn


@dataclass(frozen=True)
class V2Cohort:
    seed: int
    scale: str
    seating: V2Seating | None
    patients: tuple[V2Patient, ...]

    @property
    def mrns(self) -> frozenset[str]:
        return frozenset(p.mrn for p in self.patients)

    def patient(self, mrn: str) -> V2Patient:
        return next(p for p in self.patients if p.mrn == mrn)

    def in_branch(self, category: int, branch: str) -> list[V2Patient]:
        return [p for p in self.patients if p.chart.branch(category) == branch]


def _spread_charts(seed: int) -> list[V2Chart]:
    """COHORT_SIZE charts; per category, a seeded shuffle of the patients takes the branches in turn."""
    assigned: list[dict[int, tuple[str, datetime]]] = [{} for _ in range(COHORT_SIZE)]
    for category, branches in BRANCHES.items():
        order = list(range(COHORT_SIZE))
        _rng(seed, "branch-order", category).shuffle(order)
        for position, index in enumerate(order):
            rng = _rng(seed, f"now-{category}", index)
            if category == 3:
                now = random_hr_now(rng)
            elif category == 4:
                now = random_hr_now(rng).replace(minute=0)
            else:
                now = default_now(category)
            assigned[index][category] = (branches[position % len(branches)], now)
    return [free_chart(_rng(seed, "chart", i), fixed) for i, fixed in enumerate(assigned)]


def build_v2_cohort(seed: int = 0, scale: str = "small", seating: V2Seating | None = None) -> V2Cohort:
    """Deterministic for (seed, scale, seating). `scale` leaves patients and branches alone; it sets
    how much background their charts carry (and the v1 population around them)."""
    patients: list[V2Patient] = []
    if seating is None:
        taken: set[str] = set()
        for index, chart in enumerate(_spread_charts(seed)):
            rng = _rng(seed, "patient", index)
            mrn = f"S{rng.randint(*COHORT_MRNS):07d}"
            while mrn in taken:
                mrn = f"S{rng.randint(*COHORT_MRNS):07d}"
            taken.add(mrn)
            patients.append(V2Patient(make_demographics(rng, mrn, 25, 95), chart))
    else:
        for mrn in seating.mrns:
            rng = _rng(seed, "patient", mrn)
            patients.append(V2Patient(make_demographics(rng, mrn, 25, 95), free_chart(rng, seating.fixed_of(mrn))))
    return V2Cohort(seed, scale, seating, tuple(patients))
