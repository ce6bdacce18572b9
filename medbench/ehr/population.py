"""The synthetic EHR population: who exists, what the task-relevant labs say, and every FHIR
resource in storage order.

`build_population` is cheap: demographics, timelines (dates only) and the MG/K/GLU/A1C series,
which is what the task generator needs at test collection. The bulk of the resources is made
lazily by `Population.iter_resources()`, once, when the FHIR store is built."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from medbench.clock import NOW
from medbench.ehr import resources
from medbench.ehr.bulk import patient_events
from medbench.ehr.demographics import Demographics, make_demographics, source_tag
from medbench.ehr.profiles import Profile, profile_for
from medbench.ehr.scales import ScaleSpec, scale_spec
from medbench.ehr.seating import NamedPerson, Seating
from medbench.ehr.situation_labs import pin_chart, situation_profile
from medbench.ehr.task_labs import TASK_CODES, Series, build_task_labs
from medbench.ehr.timeline import Timeline, build_timeline
from medbench.ehr.version import GENERATOR_VERSION  # noqa: F401  (re-exported: population.GENERATOR_VERSION)

FIRST_RESOURCE_ID = 100000


@dataclass(frozen=True)
class PatientRecord:
    """What a task generator may know about a patient without a server: identity, and exactly
    the stored MG, K, GLU and A1C values in storage order (every code present as a key)."""

    mrn: str
    given: list[str]
    family: str
    birth_date: date
    gender: str
    has_data: bool
    labs: dict[str, list[tuple[datetime, float]]]


@dataclass(frozen=True)
class _Slot:
    demographics: Demographics
    profile: Profile | None = None
    timeline: Timeline | None = None
    task_series: dict[str, Series] | None = None
    bulk_seed: int = 0


def _seed(seed: int, stream: str, slot: int) -> int:
    """Independent, platform-stable seeds per (population seed, purpose, patient slot)."""
    digest = hashlib.sha256(f"medbench-ehr|{seed}|{stream}|{slot}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _rng(seed: int, stream: str, slot: int) -> random.Random:
    return random.Random(_seed(seed, stream, slot))


def _storage_ranks(timeline: Timeline) -> dict[int, int]:
    return {encounter: rank for rank, encounter in enumerate(timeline.storage_order)}


class Population:
    """A built population; iterate `patients` for facts, `iter_resources()` for the FHIR data."""

    def __init__(self, seed: int, spec: ScaleSpec, seating: Seating | None, slots: list[_Slot]) -> None:
        self.seed = seed
        self.scale = spec.name
        self.spec = spec
        self.seating = seating
        self._slots = slots
        self.patients: list[PatientRecord] = [self._record(slot) for slot in slots]
        self._by_mrn = {slot.demographics.mrn: slot for slot in slots}

    @staticmethod
    def _record(slot: _Slot) -> PatientRecord:
        demo = slot.demographics
        labs: dict[str, list[tuple[datetime, float]]] = {code: [] for code in TASK_CODES}
        if slot.timeline is not None and slot.task_series is not None:
            ranks = _storage_ranks(slot.timeline)
            for code, series in slot.task_series.items():
                labs[code] = [(v.time, v.value) for v in sorted(series, key=lambda v: (ranks[v.encounter], v.time))]
        return PatientRecord(
            demo.mrn, list(demo.given), demo.family, demo.birth_date, demo.gender, slot.profile is not None, labs
        )

    def profile_of(self, mrn: str) -> Profile | None:
        """The branch profile a data patient was generated with (None for demographics-only)."""
        return self._by_mrn[mrn].profile

    def iter_resources(self, part: int = 0, parts: int = 1) -> Iterator[dict[str, Any]]:
        """Every resource in storage order: all Patients, then each data patient's resources,
        grouped by encounter in the timeline's shuffled order. Re-iterable and deterministic.

        `part` of `parts` is one contiguous share of that order (part 0 has the Patients and the
        first data patients, and so on), each resource with the id it has in the whole, so the
        parts can be made in parallel processes and concatenated. A part counts, without
        building them, the resources of the data patients before it."""
        if part == 0:
            for index, slot in enumerate(self._slots):
                rng = _rng(self.seed, "patient-meta", index)
                yield resources.patient(
                    slot.demographics, NOW - timedelta(minutes=rng.randint(60, 60 * 24 * 30)), source_tag(rng)
                )
        data = [
            s for s in self._slots if s.profile is not None and s.timeline is not None and s.task_series is not None
        ]
        first, end = len(data) * part // parts, len(data) * (part + 1) // parts
        next_id = FIRST_RESOURCE_ID
        for position, slot in enumerate(data[:end]):
            assert slot.profile is not None and slot.timeline is not None and slot.task_series is not None
            events = patient_events(
                random.Random(slot.bulk_seed),
                slot.demographics.mrn,
                slot.timeline,
                slot.task_series,
                slot.profile,
                self.spec,
            )
            if position < first:
                next_id += len(events)
                continue
            ranks = _storage_ranks(slot.timeline)
            events.sort(key=lambda event: (ranks[event[0]], event[1]))
            for _, _, builder, args in events:
                yield builder(next_id, *args)
                next_id += 1


def _fresh_mrn(rng: random.Random, taken: set[str]) -> str:
    while True:
        mrn = f"S{rng.randint(1000000, 6999999):07d}"
        if mrn not in taken:
            taken.add(mrn)
            return mrn


def _keep_clear(demo: Demographics, reserved: list[NamedPerson]) -> Demographics:
    """Move a patient's birth date by days until no seated name + DOB search could find it."""
    while any(person.could_be_found_as(demo.given, demo.family, demo.birth_date) for person in reserved):
        demo = replace(demo, birth_date=demo.birth_date + timedelta(days=1))
    return demo


def _identities(seed: int, stream: str, indices: range, taken: set[str]) -> list[tuple[random.Random, str]]:
    """Each slot's random stream and the MRN it draws first (its MRN when nothing is seated)."""
    identities = []
    for index in indices:
        rng = _rng(seed, stream, index)
        identities.append((rng, _fresh_mrn(rng, taken)))
    return identities


def build_population(seed: int = 0, scale: str = "small", seating: Seating | None = None) -> Population:
    """Deterministic for (seed, scale, seating, GENERATOR_VERSION).

    Seating changes as little as possible: a seated MRN that is already a data patient of the
    unseated population stays where it is (so seating a task set generated from this population
    reproduces it); other seated MRNs take over data-patient slots, adding slots when the scale
    has too few. Seated MRNs are always data patients.
    Seated task1 people get their stated name and birth date, and nobody else answers a seated
    or not-found name + birth date search."""
    spec = scale_spec(scale)
    taken: set[str] = set()
    data = _identities(seed, "data", range(spec.data_patients), taken)
    wanted = {mrn for mrn, _ in seating.mrns} if seating else set()
    taken |= wanted
    others = _identities(seed, "demographics-only", range(spec.demographic_only_patients), taken)
    seated: dict[int, str] = {}
    reserved: list[NamedPerson] = []
    if seating is not None:
        natural = {mrn for _, mrn in data} & wanted
        free = [index for index, (_, mrn) in enumerate(data) if mrn not in wanted]
        missing = len(wanted - natural) - len(free)
        if missing > 0:
            free += range(len(data), len(data) + missing)
            data += _identities(seed, "data", range(len(data), len(data) + missing), taken)
        seated = seating.assign_slots(free, placed=natural)
        reserved = [person for _, person in seating.found] + list(seating.not_found)
    slots: list[_Slot] = []
    for index, (rng, natural_mrn) in enumerate(data):
        mrn = seated.get(index, natural_mrn)
        demo = _seat(make_demographics(rng, mrn, 25, 95), seating, reserved)
        profile = profile_for(index)
        chart = seating.chart_of(mrn) if seating else None
        if chart is not None:
            demo = _born_on(demo, chart.birth_date, reserved, _rng(seed, "situation-name", index))
            profile = situation_profile(profile, chart)
        timeline = build_timeline(_rng(seed, "timeline", index), spec, profile, demo.birth_date)
        task_series = build_task_labs(_rng(seed, "task-labs", index), timeline, profile)
        if chart is not None:
            task_series = pin_chart(_rng(seed, "situation-labs", index), timeline, task_series, chart)
        slots.append(_Slot(demo, profile, timeline, task_series, _seed(seed, "bulk", index)))
    for rng, mrn in others:
        slots.append(_Slot(_seat(make_demographics(rng, mrn, 18, 95), seating, reserved)))
    if seating is not None and seating.near_misses:
        _seat_near_misses(slots, seating.near_misses)
    return Population(seed, spec, seating, slots)


def _born_on(
    demo: Demographics, birth_date: date | None, reserved: list[NamedPerson], rng: random.Random
) -> Demographics:
    """Give a patient its real birth date; if that made it answer a seated name + birth date search,
    draw it another name (the birth date is the fact that matters, the name is synthetic)."""
    if birth_date is None or demo.birth_date == birth_date:
        return demo
    moved = replace(demo, birth_date=birth_date)
    while any(person.could_be_found_as(moved.given, moved.family, birth_date) for person in reserved):
        other = make_demographics(rng, demo.mrn, 25, 95)
        moved = replace(moved, given=other.given, family=other.family, gender=other.gender)
    return moved


def _seat_near_misses(slots: list[_Slot], near_misses: tuple[NamedPerson, ...]) -> None:
    """Make sure each near miss (a real patient sharing a "not found" lookup's name, born another
    day) exists: when no seated patient is that person, a demographics-only patient becomes them."""
    spare = (index for index, slot in enumerate(slots) if slot.profile is None)
    for person in near_misses:
        if any(
            person.same_as(NamedPerson(s.demographics.given, s.demographics.family, s.demographics.birth_date))
            for s in slots
        ):
            continue
        index = next(spare)
        slots[index] = replace(
            slots[index], demographics=slots[index].demographics.renamed(person.given, person.family, person.birth_date)
        )


def _seat(demo: Demographics, seating: Seating | None, reserved: list[NamedPerson]) -> Demographics:
    """Give a seated task1 person their stated name and birth date; keep everyone else clear of them."""
    person = seating.person_of(demo.mrn) if seating else None
    if person is None:
        return _keep_clear(demo, reserved)
    if (demo.given, demo.family, demo.birth_date) == (person.given, person.family, person.birth_date):
        return demo
    return demo.renamed(person.given, person.family, person.birth_date)
