"""The four task-relevant lab series (MG, K, GLU, A1C) of one data patient, shaped by its profile.

Values follow the timeline's blood draws; then the profile is enforced on the part graders read
(latest magnesium within 24 h, latest potassium, glucose within 24 h, latest HbA1c and its age),
pinning boundary cases on the first occurrences of a tier."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from medbench.clock import NOW
from medbench.ehr.catalog import Measure, load_catalog
from medbench.ehr.profiles import Profile
from medbench.ehr.timeline import LAST_DRAW, Timeline

TASK_CODES = ("MG", "K", "GLU", "A1C")
WINDOW_START = NOW - timedelta(hours=24)
"""Graders count a value as "within 24 h" when effectiveDateTime >= this (no upper bound)."""
A1C_CUTOFF = datetime(2022, 11, 13, 10, 15, tzinfo=timezone.utc)
"""task10 reorders HbA1c when the latest result is strictly earlier than this."""
ONE_MINUTE = timedelta(minutes=1)

MG_PINNED = {"normal": {}, "mild": {0: 1.9, 1: 1.5}, "moderate": {0: 1.0, 1: 1.4}, "severe": {0: 0.9}}
MG_RANGES = {"normal": (2.0, 2.6), "mild": (1.5, 1.9), "moderate": (1.0, 1.4), "severe": (0.5, 0.9)}
K_PINNED = {"low": {0: 3.4}, "normal": {0: 3.5}}
K_RANGES = {"low": (2.6, 3.4), "normal": (3.5, 5.0)}


@dataclass(frozen=True)
class LabValue:
    encounter: int
    time: datetime
    value: float


Series = list[LabValue]


class _Shaper:
    """Edits one patient's series; every added value lands in the encounter around its time."""

    def __init__(self, rng: random.Random, timeline: Timeline, baselines: dict[str, float]) -> None:
        self.rng = rng
        self.timeline = timeline
        self.baselines = baselines
        self.catalog = load_catalog()

    def typical(self, code: str) -> float:
        measure: Measure = self.catalog.labs[code]
        return measure.clip(self.baselines[code] + measure.sd * self.rng.gauss(0, 0.7))

    def add(self, series: Series, moment: datetime, value: float) -> Series:
        kept = [v for v in series if v.time != moment]
        return sorted(kept + [LabValue(self.timeline.encounter_at(moment), moment, value)], key=lambda v: v.time)

    def moment(self, start: datetime, end: datetime) -> datetime:
        minutes = int((end - start).total_seconds() // 60)
        return start + timedelta(minutes=self.rng.randint(0, max(minutes, 0)))

    def uniform(self, low: float, high: float, decimals: int) -> float:
        return round(self.rng.uniform(low, high), decimals)

    def history_start(self) -> datetime:
        return self.timeline.encounters[0].start if self.timeline.encounters else NOW - timedelta(days=365)

    def ensure_within_window(self, series: Series, code: str, count: int) -> Series:
        while sum(v.time >= WINDOW_START for v in series) < count:
            series = self.add(series, self.moment(WINDOW_START + timedelta(hours=1), LAST_DRAW), self.typical(code))
        return series

    def ensure_before(self, series: Series, code: str, end: datetime) -> Series:
        if not any(v.time < end for v in series):
            start = min(self.history_start(), end - timedelta(days=30))
            series = self.add(series, self.moment(start, end - timedelta(days=2)), self.typical(code))
        return series


def _shape_mg(s: _Shaper, series: Series, p: Profile) -> Series:
    if p.mg == "missing":
        older = [v for v in series if v.time < WINDOW_START]
        if p.mg_occurrence == 0:
            return s.add(older, WINDOW_START - ONE_MINUTE, s.typical("MG"))
        return [] if p.mg_occurrence == 1 else older
    value = MG_PINNED[p.mg].get(p.mg_occurrence)
    if value is None:
        value = s.uniform(*MG_RANGES[p.mg], 1)
    if p.mg == "normal" and p.mg_occurrence == 0:
        return s.add([v for v in series if v.time < WINDOW_START], WINDOW_START, value)
    series = s.ensure_within_window(series, "MG", 1)
    return series[:-1] + [LabValue(series[-1].encounter, series[-1].time, value)]


def _shape_k(s: _Shaper, series: Series, p: Profile) -> Series:
    if p.k == "missing":
        return []
    value = K_PINNED[p.k].get(p.k_occurrence)
    if value is None:
        value = s.uniform(*K_RANGES[p.k], 1)
    series = s.ensure_before(series, "K", LAST_DRAW)
    return series[:-1] + [LabValue(series[-1].encounter, series[-1].time, value)]


def _shape_glu(s: _Shaper, series: Series, p: Profile) -> Series:
    if p.glu == "none":
        return []
    if p.glu == "older_only":
        series = [v for v in series if v.time < WINDOW_START]
        if p.glu_occurrence == 0:
            series = s.add(series, WINDOW_START - ONE_MINUTE, s.typical("GLU"))
        return s.ensure_before(series, "GLU", WINDOW_START)
    if p.glu_occurrence == 0:
        series = s.add(series, WINDOW_START, s.typical("GLU"))
    return s.ensure_within_window(series, "GLU", 3)


def _shape_a1c(s: _Shaper, series: Series, p: Profile) -> Series:
    if p.a1c == "missing":
        return []
    if p.a1c == "stale":
        series = [v for v in series if v.time < A1C_CUTOFF]
        if p.a1c_occurrence == 0:
            series = s.add(series, A1C_CUTOFF - ONE_MINUTE, s.typical("A1C"))
        return s.ensure_before(series, "A1C", A1C_CUTOFF)
    if p.a1c_occurrence == 0:
        return s.add([v for v in series if v.time < A1C_CUTOFF], A1C_CUTOFF, s.typical("A1C"))
    if not any(v.time >= A1C_CUTOFF for v in series):
        series = s.add(series, s.moment(A1C_CUTOFF + timedelta(days=1), NOW - timedelta(days=3)), s.typical("A1C"))
    return series


def build_task_labs(rng: random.Random, timeline: Timeline, profile: Profile) -> dict[str, Series]:
    """Chronological MG, K, GLU and A1C values of one patient, with the profile's branches enforced."""
    catalog = load_catalog()
    baselines = {code: catalog.labs[code].mean + catalog.labs[code].sd * rng.gauss(0, 0.6) for code in TASK_CODES}
    if profile.diabetic:
        baselines["GLU"] += 40
        baselines["A1C"] += 1.2
    shaper = _Shaper(rng, timeline, baselines)
    series: dict[str, Series] = {code: [] for code in TASK_CODES}
    for draw in timeline.draws:
        for panel in draw.panels:
            for code in catalog.panels[panel]:
                if code in series:
                    series[code].append(LabValue(draw.encounter, draw.time, shaper.typical(code)))
    return {
        "MG": _shape_mg(shaper, series["MG"], profile),
        "K": _shape_k(shaper, series["K"], profile),
        "GLU": _shape_glu(shaper, series["GLU"], profile),
        "A1C": _shape_a1c(shaper, series["A1C"], profile),
    }
