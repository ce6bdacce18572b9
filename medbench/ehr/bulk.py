"""Every stored resource of one data patient, as unnumbered events grouped by encounter.

An event is (encounter, time, builder, args); the population orders events by the
timeline's storage order and numbers them, so resource ids follow insertion order."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from medbench.clock import NOW
from medbench.ehr import resources
from medbench.ehr.catalog import Catalog, load_catalog
from medbench.ehr.demographics import source_tag
from medbench.ehr.profiles import Profile
from medbench.ehr.scales import ScaleSpec
from medbench.ehr.task_labs import Series
from medbench.ehr.timeline import LAST_DRAW, Encounter, Timeline

Event = tuple[int, datetime, Callable[..., dict[str, Any]], tuple[Any, ...]]
VITAL_SET = ("PULSE", "RESP", "TEMP", "SPO2")
INITIAL_HOSPITAL_CARE = "99223"
OFFICE_VISIT = "99214"


class _PatientBulk:
    def __init__(self, rng: random.Random, mrn: str, timeline: Timeline, profile: Profile) -> None:
        self.rng = rng
        self.mrn = mrn
        self.timeline = timeline
        self.profile = profile
        self.catalog: Catalog = load_catalog()
        self.sources = [source_tag(rng) for _ in timeline.encounters]
        self.baselines = {
            code: m.mean + m.sd * rng.gauss(0, 0.6) for code, m in {**self.catalog.labs, **self.catalog.vitals}.items()
        }
        self.bp_base = (rng.gauss(0, 10), rng.gauss(0, 6))
        self.events: list[Event] = []

    def emit(self, encounter: int, moment: datetime, builder: Callable[..., dict[str, Any]], *args: Any) -> None:
        self.events.append((encounter, moment, builder, (self.mrn, *args, self.sources[encounter])))

    def issued(self, moment: datetime) -> datetime:
        return min(moment + timedelta(minutes=20 + int(self.rng.random() * 221)), NOW)

    def labs(self, task_series: dict[str, Series]) -> None:
        labs = self.catalog.labs
        for draw in self.timeline.draws:
            issued = self.issued(draw.time)
            for panel in draw.panels:
                for code in self.catalog.panels[panel]:
                    if code in task_series:
                        continue
                    measure = labs[code]
                    value = measure.clip(self.baselines[code] + measure.sd * self.rng.gauss(0, 0.7))
                    self.emit(draw.encounter, draw.time, resources.lab, measure, draw.time, issued, value)
        for code, series in task_series.items():
            for item in series:
                self.emit(
                    item.encounter, item.time, resources.lab, labs[code], item.time, self.issued(item.time), item.value
                )

    def vital_signs(self, encounter: Encounter, moment: datetime, with_weight: bool) -> None:
        bp = self.catalog.blood_pressure
        systolic = round(bp["systolic_mean"] + self.bp_base[0] + self.rng.gauss(0, bp["systolic_sd"] * 0.6))
        diastolic = round(bp["diastolic_mean"] + self.bp_base[1] + self.rng.gauss(0, bp["diastolic_sd"] * 0.6))
        self.emit(encounter.index, moment, resources.vital, "BP", moment, f"{systolic}/{diastolic} mmHg", None)
        codes = VITAL_SET + (("WEIGHT",) if with_weight else ())
        for code in codes:
            measure = self.catalog.vitals[code]
            spread = 0.05 if code == "WEIGHT" else 0.7
            value = measure.clip(self.baselines[code] + measure.sd * self.rng.gauss(0, spread))
            self.emit(encounter.index, moment, resources.vital, code, moment, value, measure.unit)

    def flowsheets(self, spec: ScaleSpec) -> None:
        for encounter in self.timeline.encounters:
            if encounter.kind == "outpatient":
                self.vital_signs(encounter, encounter.start + timedelta(minutes=5), True)
                continue
            moment = encounter.start + timedelta(minutes=self.rng.randint(10, 40))
            weighed_on = None
            while moment <= min(encounter.end, LAST_DRAW):
                self.vital_signs(encounter, moment, weighed_on != moment.date())
                weighed_on = moment.date()
                moment += timedelta(hours=spec.vitals_interval_hours, minutes=self.rng.randint(-20, 20))

    def problems(self) -> None:
        conditions = self.catalog.conditions
        chronic = [c for c in conditions if not c.get("acute") and not c.get("diabetes")]
        chosen = self.rng.sample(chronic, self.rng.randint(2, 6))
        if self.profile.diabetic:
            chosen.append(self.rng.choice([c for c in conditions if c.get("diabetes")]))
        for entry in chosen:
            encounter = self.rng.choice(self.timeline.encounters)
            self.emit(encounter.index, encounter.start, resources.condition, entry, encounter.start, True)
        acute = [c for c in conditions if c.get("acute")]
        for encounter in self.timeline.encounters:
            if encounter.kind == "inpatient" and self.rng.random() < 0.6:
                self.emit(
                    encounter.index,
                    encounter.start,
                    resources.condition,
                    self.rng.choice(acute),
                    encounter.start,
                    encounter.current,
                )

    def orders(self) -> None:
        meds = self.catalog.medications
        inpatient_meds = [m for m in meds if m["setting"] in ("inpatient", "any")]
        home_meds = self.rng.sample([m for m in meds if m["setting"] in ("outpatient", "any")], self.rng.randint(1, 4))
        procedures = {p["cpt"]: p for p in self.catalog.procedures}
        admission_care, office_visit = procedures[INITIAL_HOSPITAL_CARE], procedures[OFFICE_VISIT]
        inpatient_procs = [
            p for p in procedures.values() if p["setting"] in ("inpatient", "any") and p is not admission_care
        ]
        outpatient_procs = [
            p for p in procedures.values() if p["setting"] in ("outpatient", "any") and p is not office_visit
        ]
        recent = NOW - timedelta(days=365)
        for encounter in self.timeline.encounters:
            start = encounter.start
            if encounter.kind == "inpatient":
                for entry in self.rng.sample(inpatient_meds, self.rng.randint(3, 7)):
                    authored = start + timedelta(minutes=self.rng.randint(30, 240))
                    if authored <= LAST_DRAW:
                        self.emit(
                            encounter.index,
                            authored,
                            resources.medication_request,
                            entry,
                            authored,
                            encounter.end,
                            "Inpatient",
                            encounter.current,
                        )
                for entry in [admission_care] + self.rng.sample(inpatient_procs, self.rng.randint(0, 3)):
                    performed = start + timedelta(minutes=self.rng.randint(60, 720))
                    if performed <= LAST_DRAW:
                        self.emit(encounter.index, performed, resources.procedure, entry, performed)
                continue
            for entry in home_meds:
                if self.rng.random() < 0.5:
                    authored = start + timedelta(minutes=30)
                    until = min(authored + timedelta(days=90), NOW)
                    self.emit(
                        encounter.index,
                        authored,
                        resources.medication_request,
                        entry,
                        authored,
                        until,
                        "Outpatient",
                        authored >= recent,
                    )
            performed = start + timedelta(minutes=20)
            if self.rng.random() < 0.7:
                self.emit(encounter.index, performed, resources.procedure, office_visit, performed)
            if self.rng.random() < 0.15:
                self.emit(encounter.index, performed, resources.procedure, self.rng.choice(outpatient_procs), performed)


def patient_events(
    rng: random.Random, mrn: str, timeline: Timeline, task_series: dict[str, Series], profile: Profile, spec: ScaleSpec
) -> list[Event]:
    """All resources of one data patient (except its Patient), unordered and unnumbered."""
    bulk = _PatientBulk(rng, mrn, timeline, profile)
    bulk.labs(task_series)
    bulk.flowsheets(spec)
    bulk.problems()
    bulk.orders()
    return bulk.events
