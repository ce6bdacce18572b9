"""Writing a patient's real decisive values into its synthetic lab series (seating by situation).

Two steps. `situation_profile` turns the chart facts into branch tiers, so the timeline and the
synthetic series are already shaped for the right branch (an inpatient with recent magnesium, a
diabetic with bedside glucose, no HbA1c at all...). `pin_chart` then edits only what the graders
read: the latest magnesium inside the 24 h window (or none there, older values kept so dates must
be checked), the latest potassium and glucose, the glucose values inside the window (their mean
is the real mean), the latest HbA1c at its real time. Everything else stays synthetic.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction

from medbench.ehr.catalog import load_catalog, round_value
from medbench.ehr.profiles import Profile
from medbench.ehr.situations import Chart
from medbench.ehr.task_labs import A1C_CUTOFF, WINDOW_START, LabValue, Series
from medbench.ehr.timeline import LAST_DRAW, Timeline

GLUCOSE_SPREAD = 12.0
"""Standard deviation (mg/dL) of the synthetic glucose values around a real 24 h mean."""
MAX_WINDOW_VALUES = 24


def _mg_tier(value: float | None) -> str:
    if value is None:
        return "missing"
    return "normal" if value > 1.9 else "mild" if value >= 1.5 else "moderate" if value >= 1 else "severe"


def situation_profile(profile: Profile, chart: Chart) -> Profile:
    """The slot's profile with the tiers the chart facts decide (the others stay synthetic)."""
    changes: dict[str, str] = {}
    if chart.mg_24h is not None:
        changes["mg"] = _mg_tier(chart.mg_24h.value)
    if chart.k_latest is not None:
        value = chart.k_latest.value
        changes["k"] = "missing" if value is None else "low" if value < 3.5 else "normal"
    if chart.glu_avg_24h is not None:
        changes["glu"] = "older_only" if chart.glu_avg_24h.value is None else "within_24h"
    if chart.glu_latest is not None and chart.glu_latest.value is None:
        changes["glu"] = "none"
    elif chart.glu_latest is not None and changes.get("glu", profile.glu) == "none":
        changes["glu"] = "older_only"
    if chart.a1c_latest is not None:
        time = chart.a1c_time
        changes["a1c"] = "missing" if time is None else "recent" if time >= A1C_CUTOFF else "stale"
    return replace(profile, **changes)


class _Pinner:
    def __init__(self, rng: random.Random, timeline: Timeline) -> None:
        self.rng = rng
        self.timeline = timeline

    def value_at(self, moment: datetime, value: float) -> LabValue:
        return LabValue(self.timeline.encounter_at(moment), moment, value)

    def moment(self, start: datetime, end: datetime) -> datetime:
        minutes = int((end - start).total_seconds() // 60)
        return start + timedelta(minutes=self.rng.randint(0, max(minutes, 0)))

    def with_older_value(self, series: Series, code: str, before: datetime) -> Series:
        """Keep (or add) at least one value before `before`, so a chart never looks empty by accident."""
        if any(v.time < before for v in series):
            return series
        start = self.timeline.encounters[0].start if self.timeline.encounters else before - timedelta(days=365)
        moment = self.moment(min(start, before - timedelta(days=30)), before - timedelta(days=2))
        measure = load_catalog().labs[code]
        return sorted([*series, self.value_at(moment, measure.clip(measure.mean))], key=lambda v: v.time)

    def latest_set_to(self, series: Series, value: float, after: datetime | None = None) -> Series:
        """Give the latest value (at or after `after`, added if there is none) the real value."""
        if not any(after is None or v.time >= after for v in series):
            series = sorted(
                [*series, self.value_at(self.moment(after or WINDOW_START, LAST_DRAW), value)], key=lambda v: v.time
            )
        last = series[-1]
        return [*series[:-1], LabValue(last.encounter, last.time, value)]

    def window_times(self, series: Series, count: int) -> list[datetime]:
        """`count` distinct draw times inside the 24 h window: the series' own first, then new ones."""
        times = sorted({v.time for v in series if v.time >= WINDOW_START})[-count:]
        while len(times) < count:
            moment = self.moment(WINDOW_START + timedelta(hours=1), LAST_DRAW)
            if moment not in times:
                times = sorted([*times, moment])
        return times

    def glucose_window(self, series: Series, mean: float, latest: float | None) -> Series:
        """Replace the window's glucose values by integers whose mean is exactly `mean`
        (the last one equal to `latest` when the real latest value is known)."""
        last = None if latest is None else int(round_value(latest, 0))
        in_window = sum(v.time >= WINDOW_START for v in series)
        count = _count_for_mean(mean, in_window, last)
        times = self.window_times(series, count)
        free = count - (last is not None)
        values = [round(mean + self.rng.gauss(0, GLUCOSE_SPREAD)) for _ in range(free)]
        shortfall = round(mean * count) - (last or 0) - sum(values)
        for index in range(free):
            values[index] += shortfall // free + (index < shortfall % free)
        if last is not None:
            values.append(last)
        older = [v for v in series if v.time < WINDOW_START]
        return older + [self.value_at(t, v) for t, v in zip(times, values, strict=True)]


def _count_for_mean(mean: float, wanted: int, latest: int | None) -> int:
    """How many integer values can average exactly to `mean` (as a float sum / count), near `wanted`."""
    fraction = Fraction(mean).limit_denominator(MAX_WINDOW_VALUES)
    if fraction.numerator / fraction.denominator != mean:
        raise ValueError(
            f"a 24 h glucose mean of {mean!r} is not a ratio of integer sums up to {MAX_WINDOW_VALUES} values"
        )
    step = fraction.denominator
    count = step * max(1, round(wanted / step))
    if latest is not None and latest != mean and count == 1:
        count = 2
    return count


def pin_chart(rng: random.Random, timeline: Timeline, series: dict[str, Series], chart: Chart) -> dict[str, Series]:
    """The series with the chart's decisive values written in (chronological, like build_task_labs)."""
    pinner = _Pinner(rng, timeline)
    out = dict(series)
    if chart.mg_24h is not None:
        if chart.mg_24h.value is None:
            out["MG"] = pinner.with_older_value([v for v in out["MG"] if v.time < WINDOW_START], "MG", WINDOW_START)
        else:
            out["MG"] = pinner.latest_set_to(out["MG"], chart.mg_24h.value, WINDOW_START)
    if chart.k_latest is not None:
        out["K"] = [] if chart.k_latest.value is None else pinner.latest_set_to(out["K"], chart.k_latest.value)
    out["GLU"] = _pin_glucose(pinner, out["GLU"], chart)
    if chart.a1c_latest is not None:
        time = chart.a1c_time
        if time is None:
            out["A1C"] = []
        else:
            older = [v for v in out["A1C"] if v.time < time]
            out["A1C"] = [*older, pinner.value_at(time, chart.a1c_latest.value[0])]
    return out


def _pin_glucose(pinner: _Pinner, series: Series, chart: Chart) -> Series:
    latest = chart.glu_latest.value if chart.glu_latest is not None else None
    if chart.glu_latest is not None and latest is None:
        return []
    if chart.glu_avg_24h is not None and chart.glu_avg_24h.value is not None:
        return pinner.glucose_window(series, chart.glu_avg_24h.value, latest)
    if chart.glu_avg_24h is not None:
        series = pinner.with_older_value([v for v in series if v.time < WINDOW_START], "GLU", WINDOW_START)
    if latest is not None:
        series = pinner.latest_set_to(series, round_value(latest, 0))
    return series
