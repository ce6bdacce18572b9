"""The real situation of every official task, read from medbench/data/official_situations.jsonl.

On the official server each official task meets one grading branch (task5_21: magnesium 1.8,
order 1 g over 1 h; task10_2: an HbA1c of 5.9 from 2023-11-09). Seating by situation writes those
decisive values into the synthetic charts, so a run of the official tasks on the embedded EHR is
graded in the same situations as on the official server. This module reads the facts and turns
them into one `Chart` per patient: what that patient's chart must say where a grader looks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from functools import lru_cache
from importlib.resources.abc import Traversable
from typing import Any

from medbench.package_data import data_file
from medbench.tasks.task import Task

SITUATIONS_PATH = data_file("official_situations.jsonl")
SITUATION_SEATING_VERSION = 1
"""Part of the seating digest (the cache key): bump it whenever seating by situation writes other data."""
NOT_FOUND = "Patient not found"


@dataclass(frozen=True)
class Situation:
    """One line of the situations file: a task, its patient, its branch and the facts deciding it."""

    task_id: str
    category: int
    mrn: str | None
    situation: str
    facts: dict[str, Any] = field(hash=False)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Situation:
        return cls(
            record["task_id"],
            int(str(record["category"]).removeprefix("task")),
            record["mrn"],
            record["situation"],
            dict(record["facts"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "category": f"task{self.category}",
            "mrn": self.mrn,
            "situation": self.situation,
            "facts": self.facts,
        }


@lru_cache(maxsize=2)
def load_situations(path: Traversable = SITUATIONS_PATH) -> dict[str, Situation]:
    """Every official task's situation by task id (file order)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"official situations not found at {path}; the file ships inside the "
            "medbench package (medbench/data/official_situations.jsonl)"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    situations = [Situation.from_json(json.loads(line)) for line in lines if line.strip()]
    return {s.task_id: s for s in situations}


def _same_patient(task: Task, situation: Situation) -> bool:
    if task.category != situation.category:
        return False
    if task.category == 1:
        expected = [NOT_FOUND] if situation.mrn is None else [situation.mrn]
        return task.sol == expected
    return task.eval_MRN == situation.mrn


def official_situations(tasks: Sequence[Task]) -> list[Situation] | None:
    """The situations of these tasks when every one of them is an official task (same id, same
    category, same patient), else None: other task files keep the plain seating."""
    known = load_situations()
    matched = [known.get(task.id) for task in tasks]
    if not tasks or any(s is None or not _same_patient(t, s) for t, s in zip(tasks, matched, strict=True)):
        return None
    return [s for s in matched if s is not None]


@dataclass(frozen=True)
class Known:
    """A fact a chart must state; `value` None means "no such value" (none in the window, never measured)."""

    value: Any


@dataclass(frozen=True)
class Chart:
    """What one patient's chart must say where graders look; a field left None is free (synthetic)."""

    birth_date: date | None = None
    mg_24h: Known | None = None
    """Latest magnesium at or after now - 24 h."""
    k_latest: Known | None = None
    glu_avg_24h: Known | None = None
    """Mean of the glucose values at or after now - 24 h."""
    glu_latest: Known | None = None
    a1c_latest: Known | None = None
    """(value, effectiveDateTime exactly as stored), or None when there is no HbA1c at all."""

    def merged(self, other: Chart, where: str) -> Chart:
        """Both charts' facts; a fact stated twice with two values raises ValueError naming `where`."""
        changes: dict[str, Any] = {}
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if theirs is None or mine == theirs:
                continue
            if mine is not None:
                raise ValueError(f"{where}: {item.name} is both {mine!r} and {theirs!r}")
            changes[item.name] = theirs
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Canonical form for the seating digest (free facts left out)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, date):
                out[item.name] = value.isoformat()
            elif isinstance(value, Known):
                out[item.name] = list(value.value) if isinstance(value.value, tuple) else value.value
        return out

    @property
    def a1c_time(self) -> datetime | None:
        if self.a1c_latest is None or self.a1c_latest.value is None:
            return None
        return datetime.fromisoformat(self.a1c_latest.value[1])


def chart_of(situation: Situation) -> Chart:
    """The chart facts one situation states about its patient."""
    facts = situation.facts
    category = situation.category
    if category == 1 and situation.mrn is not None:
        return Chart(birth_date=date.fromisoformat(facts["real_birthDate"]))
    if category == 2:
        return Chart(birth_date=date.fromisoformat(facts["birthDate"]))
    if category in (4, 5):
        return Chart(mg_24h=Known(facts["latest_mg_within_24h"]))
    if category == 6:
        return Chart(glu_avg_24h=Known(facts["average_glucose_within_24h"]))
    if category == 7:
        return Chart(glu_latest=Known(facts["latest_glucose"]))
    if category == 9:
        return Chart(k_latest=Known(facts["latest_k"]))
    if category == 10:
        value, time = facts["latest_a1c"], facts["latest_a1c_time"]
        return Chart(a1c_latest=Known(None if value is None else (value, time)))
    return Chart()


def charts_of(situations: Iterable[Situation]) -> dict[str, Chart]:
    """One merged chart per patient MRN, in first-appearance order; contradictions raise ValueError."""
    charts: dict[str, Chart] = {}
    for situation in situations:
        if situation.mrn is None:
            continue
        charts[situation.mrn] = charts.get(situation.mrn, Chart()).merged(
            chart_of(situation), f"{situation.task_id} ({situation.mrn})"
        )
    return charts


def near_miss_birth_date(situation: Situation) -> date | None:
    """For a "not found" lookup: the birth date of the real patient who has the task's name, if any."""
    near = situation.facts.get("near_miss") or {}
    return date.fromisoformat(near["birthDate"]) if near.get("same_name_as_task") and near.get("birthDate") else None
