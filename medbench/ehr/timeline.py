"""A data patient's care timeline: encounters, blood draws, and the order they are stored in.

The timeline is cheap (dates only, no values), so both the task-relevant labs and the bulk
resources can be derived from it independently: the task generator needs the former for
every patient at collection time, the FHIR store needs everything once."""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from medbench.clock import NOW
from medbench.ehr.profiles import Profile
from medbench.ehr.scales import ScaleSpec

LAST_DRAW = NOW - timedelta(minutes=3)
POC_GLUCOSE_TIMES = (time(7, 30), time(11, 30), time(16, 30), time(21, 0))


@dataclass(frozen=True)
class Encounter:
    index: int
    kind: str
    start: datetime
    end: datetime
    current: bool


@dataclass(frozen=True)
class Draw:
    """One specimen collection: the panels resulted from it share its time."""

    encounter: int
    time: datetime
    panels: tuple[str, ...]


@dataclass(frozen=True)
class Timeline:
    encounters: tuple[Encounter, ...]
    draws: tuple[Draw, ...]
    storage_order: tuple[int, ...]
    """Encounter indices in the order their resources are stored: shuffled, so the server's
    insertion order is not chronological and "most recent" needs real work."""

    def encounter_at(self, moment: datetime) -> int:
        """The encounter containing `moment`, else the latest one starting before it (else the first)."""
        starts = [e.start for e in self.encounters]
        position = bisect_right(starts, moment) - 1
        return self.encounters[max(position, 0)].index


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=hour, minutes=minute)


def _random_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    minutes = int((end - start).total_seconds() // 60)
    return start + timedelta(minutes=rng.randint(0, max(minutes, 0)))


def _stays(rng: random.Random, spec: ScaleSpec, history_start: datetime) -> list[tuple[datetime, datetime]]:
    count = round(spec.history_years * spec.stays_per_year * rng.uniform(0.5, 1.5))
    latest_start = NOW - timedelta(days=12)
    if latest_start <= history_start:
        return []
    starts = sorted(_random_moment(rng, history_start, latest_start) for _ in range(count))
    stays: list[tuple[datetime, datetime]] = []
    for start in starts:
        end = start + timedelta(days=rng.choice((1, 2, 2, 3, 3, 4, 5, 6, 8)), minutes=rng.randint(0, 600))
        if (not stays or start > stays[-1][1] + timedelta(days=2)) and end < NOW - timedelta(days=8):
            stays.append((start, end))
    return stays


def _outpatient_visits(
    rng: random.Random, spec: ScaleSpec, history_start: datetime, busy: list[tuple[datetime, datetime]]
) -> list[datetime]:
    visits = []
    moment = history_start + timedelta(days=rng.uniform(0, spec.outpatient_interval_days))
    while moment < NOW - timedelta(days=3):
        visit = _at(moment.date(), 8, rng.randint(0, 510))
        if all(not (s - timedelta(days=1) <= visit <= e + timedelta(days=1)) for s, e in busy):
            visits.append(visit)
        moment += timedelta(days=spec.outpatient_interval_days * rng.uniform(0.6, 1.4))
    return visits


def _maybe(rng: random.Random, probability: float, panel: str) -> tuple[str, ...]:
    return (panel,) if rng.random() < probability else ()


def _outpatient_draws(rng: random.Random, encounter: Encounter, diabetic: bool) -> list[Draw]:
    panels = (
        _maybe(rng, 0.85, "BMP")
        + _maybe(rng, 0.6, "CBC")
        + _maybe(rng, 0.3, "HEPATIC")
        + _maybe(rng, 0.25, "LIPID")
        + _maybe(rng, 0.15, "TSH")
        + _maybe(rng, 0.2, "MG")
        + _maybe(rng, 0.8 if diabetic else 0.05, "A1C")
        + _maybe(rng, 0.1, "INR")
    )
    if not panels:
        return []
    return [Draw(encounter.index, encounter.start + timedelta(minutes=rng.randint(15, 45)), panels)]


def _inpatient_draws(rng: random.Random, encounter: Encounter, bedside_glucose: bool) -> list[Draw]:
    end = min(encounter.end, LAST_DRAW)
    admission = ("BMP", "CBC", "MG", "PHOS", "HEPATIC") + _maybe(rng, 0.4, "LACTATE") + _maybe(rng, 0.4, "INR")
    draws = [Draw(encounter.index, encounter.start + timedelta(minutes=rng.randint(20, 90)), admission)]
    day = encounter.start.date() + timedelta(days=1)
    while day <= end.date():
        morning = (
            ("BMP", "CBC", "MG") + _maybe(rng, 0.7, "PHOS") + _maybe(rng, 0.25, "HEPATIC") + _maybe(rng, 0.2, "INR")
        )
        draws.append(Draw(encounter.index, _at(day, 4, rng.randint(0, 119)), morning))
        if rng.random() < 0.4:
            draws.append(Draw(encounter.index, _at(day, 15, rng.randint(0, 179)), ("BMP",)))
        day += timedelta(days=1)
    if bedside_glucose:
        day = encounter.start.date()
        while day <= end.date():
            for slot in POC_GLUCOSE_TIMES:
                draws.append(
                    Draw(encounter.index, _at(day, slot.hour, slot.minute + rng.randint(-15, 15)), ("POC_GLU",))
                )
            day += timedelta(days=1)
    return [d for d in draws if encounter.start < d.time <= end]


def build_timeline(rng: random.Random, spec: ScaleSpec, profile: Profile, birth_date: date) -> Timeline:
    """Encounters over the scale's history window (plus a current admission when the profile
    needs values from the last 24 h), their blood draws, and a shuffled storage order."""
    adulthood = datetime(birth_date.year + 18, birth_date.month, min(birth_date.day, 28), tzinfo=timezone.utc)
    history_start = max(NOW - timedelta(days=365 * spec.history_years), adulthood)
    stays = _stays(rng, spec, history_start)
    admitted = profile.currently_admitted or rng.random() < 0.2
    if admitted:
        current = (NOW - timedelta(hours=rng.uniform(40, 120)), NOW)
        stays = [s for s in stays if s[1] < current[0] - timedelta(days=3)] + [current]
    visits = _outpatient_visits(rng, spec, history_start, stays)
    spans = sorted(
        [(s, e, "inpatient") for s, e in stays] + [(v, v + timedelta(hours=1), "outpatient") for v in visits]
    )
    encounters = tuple(
        Encounter(i, kind, s, e, kind == "inpatient" and e == NOW) for i, (s, e, kind) in enumerate(spans)
    )
    draws: list[Draw] = []
    for encounter in encounters:
        if encounter.kind == "outpatient":
            draws.extend(_outpatient_draws(rng, encounter, profile.diabetic))
        else:
            bedside = profile.diabetic or (encounter.current and profile.glu == "within_24h")
            draws.extend(_inpatient_draws(rng, encounter, bedside))
    unique: list[Draw] = []
    for draw in sorted(draws, key=lambda d: d.time):
        if not unique or draw.time != unique[-1].time:
            unique.append(draw)
    order = list(range(len(encounters)))
    rng.shuffle(order)
    return Timeline(encounters, tuple(unique), tuple(order))
