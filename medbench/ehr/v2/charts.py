"""A v2 chart: for one patient, the branch each v2 category meets and the resources that put it there.

A chart names, per category, a branch (medbench/ehr/v2/branches.py) and the instant that category
measures from (the task's "now"). `chart_entries` writes the resources: the decisive ones (the CT
dates, the active anticoagulants, the heart rates around "now", ...) and distractors that must not
change the decision (older studies, stopped orders, sibling codes, values after "now"). The ten
categories read disjoint data, except task1 and task5, which share the CT history; the writers keep
both decisions true together. Everything dated here lies before 2025 and is stamped
meta.lastUpdated on one evening at the end of 2024, increasing with clinical time, so "latest by
lastUpdated" (task7's rule) and "latest by date" agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medbench.ehr.v2 import resources as r
from medbench.ehr.v2.branches import BRANCHES, CATHETER_NOW, COVID_NOW, DEFAULT_NOW, FLU_NOW

Factory = Callable[[str, datetime, str], dict[str, Any]]
"""Builds one resource from its id, its meta.lastUpdated and its meta.source."""

CT_CODES = {"IMGCT0491": "CT ABDOMEN PELVIS W CONTRAST", "IMGIL0001": "CT ABDOMEN W/O CONTRAST"}
CT_CPT, CT_CPT_DISPLAY = "74177", "CT ABDOMEN AND PELVIS WITH IV CONTRAST"
CATHETER, CATHETER_DISPLAY = "NUR1373", "INDWELLING URINARY CATHETER"
FLU, FLU_DISPLAY = "90686", "INFLUENZA VACCINE QUADRIVALENT PRESERVATIVE FREE IM"
COVID, COVID_DISPLAY = "COVIDVACCINE", "COVID-19 VACCINE ADMINISTRATION"

HEPARIN_5000 = ("HEPARIN, PORCINE (PF) 5,000 UNIT/0.5 ML INJ SYRG", "HEPARIN 5000 UNIT/ML INJECTION SOLUTION")
OTHER_ANTICOAGULANTS = (
    "ENOXAPARIN 40 MG/0.4 ML SC SYRG",
    "APIXABAN 5 MG TABLET",
    "RIVAROXABAN 20 MG TABLET",
    "WARFARIN 5 MG TABLET",
    "DALTEPARIN 5,000 UNIT/0.2 ML SC SYRG",
    "FONDAPARINUX 2.5 MG/0.5 ML SC SYRG",
)
OPIOIDS = (
    "OXYCODONE 5 MG TABLET",
    "HYDROMORPHONE 1 MG/ML INJECTION SOLUTION",
    "MORPHINE 4 MG/ML INJECTION SOLUTION",
    "FENTANYL 25 MCG/HR TRANSDERMAL PATCH",
    "HYDROCODONE-ACETAMINOPHEN 5-325 MG TABLET",
)
NALOXONE = ("NALOXONE 4 MG/ACTUATION NASAL SPRAY", "NALOXONE 0.4 MG/ML INJECTION SOLUTION")
QT_DRUGS = (
    "ONDANSETRON 4 MG/2 ML INJECTION SOLUTION",
    "HALOPERIDOL 5 MG/ML INJECTION SOLUTION",
    "QUETIAPINE 25 MG TABLET",
    "OLANZAPINE 5 MG TABLET",
    "PROCHLORPERAZINE 10 MG TABLET",
    "RISPERIDONE 1 MG TABLET",
)
COVID_ORDERS = (
    "COVID-19 VACCINE, MRNA (PFIZER) 30 MCG/0.3 ML IM SUSP",
    "COVID-19 VACCINE, MRNA (MODERNA) 50 MCG/0.5 ML IM SUSP",
)
BACKGROUND_MEDS = (
    "LISINOPRIL 10 MG TABLET",
    "ATORVASTATIN 40 MG TABLET",
    "METFORMIN 500 MG TABLET",
    "AMLODIPINE 5 MG TABLET",
    "PANTOPRAZOLE 40 MG EC TABLET",
    "ACETAMINOPHEN 650 MG TABLET",
    "SENNA 8.6 MG TABLET",
    "DOCUSATE 100 MG CAPSULE",
    "CEFTRIAXONE 1 G IV SOLR",
    "POLYETHYLENE GLYCOL 17 G PACKET",
)


@dataclass(frozen=True)
class V2Chart:
    """One patient's v2 situation: (category, branch, now) for each of the ten categories."""

    placements: tuple[tuple[int, str, datetime], ...]

    def branch(self, category: int) -> str:
        return next(branch for c, branch, _ in self.placements if c == category)

    def now(self, category: int) -> datetime:
        return next(now for c, _, now in self.placements if c == category)

    def to_json(self) -> list[list[Any]]:
        return [[c, branch, now.isoformat()] for c, branch, now in self.placements]


def default_now(category: int) -> datetime:
    """The instant a category measures from when nothing else decides it."""
    return {4: CATHETER_NOW, 9: FLU_NOW, 10: COVID_NOW}.get(category, DEFAULT_NOW)


def free_chart(rng: random.Random, fixed: dict[int, tuple[str, datetime]] | None = None) -> V2Chart:
    """A chart with the `fixed` placements and a random branch (at its default now, task3 at a
    random one) for every other category."""
    fixed = fixed or {}
    placements = []
    for category, branches in BRANCHES.items():
        if category in fixed:
            branch, now = fixed[category]
        else:
            branch = rng.choice(branches)
            now = random_hr_now(rng) if category == 3 else default_now(category)
        placements.append((category, branch, now))
    return V2Chart(tuple(placements))


def random_hr_now(rng: random.Random) -> datetime:
    """A plausible inpatient "now" between 2020 and late 2023 (minutes precision)."""
    start = datetime(2020, 3, 1, tzinfo=DEFAULT_NOW.tzinfo)
    return start + timedelta(minutes=rng.randint(0, (DEFAULT_NOW - start).days * 24 * 60))


class _Writer:
    """Collects (clinical time, factory) entries for one patient."""

    def __init__(self, rng: random.Random, mrn: str) -> None:
        self.rng = rng
        self.mrn = mrn
        self.entries: list[tuple[datetime, Factory]] = []

    def add(self, moment: datetime, factory: Factory) -> None:
        self.entries.append((moment, factory))

    def procedure(self, code: str, display: str, performed: datetime) -> None:
        mrn = self.mrn
        self.add(performed, lambda rid, upd, src: r.procedure(rid, mrn, code, display, performed, upd, src))

    def condition(self, icd10: str, display: str, onset: datetime) -> None:
        mrn = self.mrn
        self.add(onset, lambda rid, upd, src: r.condition(rid, mrn, icd10, display, onset, upd, src))

    def observation(
        self, code: str, effective: datetime, value: float | None, unit: str, category: str = "laboratory"
    ) -> None:
        mrn = self.mrn
        self.add(
            effective, lambda rid, upd, src: r.observation(rid, mrn, code, effective, value, unit, upd, src, category)
        )

    def order(self, text: str, status: str, authored: datetime, route: str = "Oral", timing: str = "Daily") -> None:
        mrn, ndc = self.mrn, _ndc_of(text)
        self.add(
            authored,
            lambda rid, upd, src: r.medication_request(rid, mrn, text, ndc, status, authored, route, timing, upd, src),
        )

    def service(self, code: str, display: str, status: str, authored: datetime) -> None:
        mrn = self.mrn
        self.add(authored, lambda rid, upd, src: r.service_request(rid, mrn, code, display, status, authored, upd, src))

    def before(self, now: datetime, low_days: float, high_days: float) -> datetime:
        """A whole-minute instant between `high_days` and `low_days` days before `now`."""
        minutes = self.rng.randint(int(low_days * 1440), int(high_days * 1440))
        return now - timedelta(minutes=minutes)


def _ndc_of(text: str) -> str:
    """A stable, NDC-shaped code for a drug text (synthetic: the graders match on text)."""
    digits = f"{sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 10**10:010d}"
    return f"{digits[:5]}-{digits[5:8]}-{digits[8:]}"


def _route(text: str) -> str:
    if "TABLET" in text or "CAPSULE" in text or "PACKET" in text:
        return "Oral"
    if "NASAL" in text:
        return "Intranasal"
    if "PATCH" in text:
        return "Transdermal"
    return "Subcutaneous" if "SC" in text else "Intravenous"


def _ct_history(w: _Writer, chart: V2Chart) -> None:
    """task1 reads IMGCT0491/IMGIL0001, task5 those plus 74177, both before DEFAULT_NOW; the task1
    branch places the local-code studies, the task5 branch adds 74177 studies (which task1 ignores)."""
    task1, task5 = chart.branch(1), chart.branch(5)
    if task1 == "stale_ct":
        latest = w.before(DEFAULT_NOW, 400, 1400)
        for moment in [latest] + [latest - timedelta(days=w.rng.randint(90, 700)) for _ in range(w.rng.randint(0, 2))]:
            code = w.rng.choice(tuple(CT_CODES))
            w.procedure(code, CT_CODES[code], moment)
    if task5 == "no_diagnosis":
        if w.rng.random() < 0.4:
            w.condition(
                "C64.1", "MALIGNANT NEOPLASM OF RIGHT KIDNEY, EXCEPT RENAL PELVIS", w.before(DEFAULT_NOW, 200, 2000)
            )
        return
    w.condition("C64.2", "MALIGNANT NEOPLASM OF LEFT KIDNEY, EXCEPT RENAL PELVIS", w.before(DEFAULT_NOW, 200, 1500))
    if task5 == "recent_ct":
        w.procedure(CT_CPT, CT_CPT_DISPLAY, w.before(DEFAULT_NOW, 5, 80))
    elif w.rng.random() < 0.6:  # ct_due: an older 74177 study, more than three months back
        w.procedure(CT_CPT, CT_CPT_DISPLAY, w.before(DEFAULT_NOW, 100, 360))


def _anticoagulants(w: _Writer, branch: str) -> None:
    rng, now = w.rng, DEFAULT_NOW

    def active(text: str) -> None:
        w.order(text, "active", w.before(now, 0.5, 6), _route(text), "Every 8 hours" if "HEPARIN" in text else "Daily")

    if branch == "one_heparin":
        active(rng.choice(HEPARIN_5000))
    elif branch == "one_other":
        active(rng.choice(OTHER_ANTICOAGULANTS))
    elif branch == "duplicate_with_heparin":
        active(rng.choice(HEPARIN_5000))
        active(rng.choice(HEPARIN_5000 + OTHER_ANTICOAGULANTS))
    elif branch == "duplicates_without_heparin":
        for text in rng.sample(OTHER_ANTICOAGULANTS, rng.randint(2, 3)):
            active(text)
    if rng.random() < 0.5:  # an earlier course, no longer active
        text = rng.choice(HEPARIN_5000 + OTHER_ANTICOAGULANTS)
        w.order(text, rng.choice(("stopped", "completed")), w.before(now, 30, 400), _route(text))


def _heart_rates(w: _Writer, branch: str, now: datetime) -> None:
    """task3: HEARTRATE values around its now; windows [now-12h, now] and [now-6h, now], inclusive."""
    rng = w.rng
    base = rng.randint(62, 96)

    def value() -> int:
        return max(40, min(150, base + rng.randint(-12, 12)))

    moments: list[datetime] = []
    if branch == "both_windows":
        moments += [now - timedelta(minutes=rng.randint(0, 359)) for _ in range(rng.randint(2, 5))]
        moments += [now - timedelta(minutes=rng.randint(361, 720)) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.4:
            moments.append(now - timedelta(hours=rng.choice((6, 12))))  # exactly on a window edge: included
    elif branch == "only_6_to_12h":
        moments += [now - timedelta(minutes=rng.randint(361, 720)) for _ in range(rng.randint(1, 4))]
    moments += [now - timedelta(minutes=rng.randint(721, 6 * 1440)) for _ in range(rng.randint(2, 6))]
    if rng.random() < 0.5:  # charted after "now": outside both windows
        moments.append(now + timedelta(minutes=rng.randint(10, 600)))
    for moment in moments:
        w.observation("HEARTRATE", moment, value(), "/min")
    if rng.random() < 0.3:  # a row with no result, which the average skips
        w.observation("HEARTRATE", now - timedelta(minutes=rng.randint(30, 700)), None, "/min")


def _catheter(w: _Writer, branch: str, now: datetime) -> None:
    """task4: NUR1373 insertions (an earlier episode's removal order is completed, so it does not count)."""
    rng = w.rng
    if branch == "no_catheter":
        return
    if rng.random() < 0.4:  # an earlier episode, removed long ago under a completed order
        old = w.before(now, 60, 500)
        w.procedure(CATHETER, CATHETER_DISPLAY, old)
        w.service(CATHETER, f"REMOVE {CATHETER_DISPLAY}", "completed", old + timedelta(hours=rng.randint(50, 120)))
    if branch == "recent_catheter":
        w.procedure(CATHETER, CATHETER_DISPLAY, now - timedelta(minutes=rng.randint(60, 47 * 60)))
        return
    w.procedure(CATHETER, CATHETER_DISPLAY, now - timedelta(minutes=rng.randint(49 * 60, 9 * 1440)))


def _thyroid(w: _Writer, branch: str) -> None:
    """task6: TSH (uIU/mL) and FT4 (ng/dL) histories; the protocol reads the whole history."""
    rng, now = w.rng, DEFAULT_NOW
    if branch == "repeat_high":
        first = w.before(now, 60, 400)
        second = first + timedelta(days=rng.randint(30, 50))
        w.observation("TSH", first, round(rng.uniform(10.5, 16), 2), "uIU/mL")
        w.observation("TSH", second, round(rng.uniform(10.5, 18), 2), "uIU/mL")
        w.observation("FT4", second, round(rng.uniform(0.5, 0.9), 2), "ng/dL")
        return
    if branch == "borderline":
        moment = w.before(now, 5, 120)
        w.observation("TSH", moment - timedelta(days=rng.randint(200, 500)), round(rng.uniform(1.0, 4.0), 2), "uIU/mL")
        w.observation("TSH", moment, round(rng.uniform(4.6, 9.8), 2), "uIU/mL")
        w.observation("FT4", moment, rng.choice((0.8, round(rng.uniform(0.9, 1.7), 2))), "ng/dL")
        return
    variant = rng.choice(("no_tsh", "normal", "borderline_abnormal_ft4", "single_high", "close_pair"))
    moment = w.before(now, 5, 200)
    if variant == "normal":
        w.observation("TSH", moment, round(rng.uniform(0.6, 4.3), 2), "uIU/mL")
        w.observation("FT4", moment, round(rng.uniform(0.9, 1.6), 2), "ng/dL")
    elif variant == "borderline_abnormal_ft4":
        w.observation("TSH", moment, round(rng.uniform(4.6, 9.8), 2), "uIU/mL")
        w.observation(
            "FT4", moment, rng.choice((round(rng.uniform(0.3, 0.7), 2), round(rng.uniform(1.9, 2.6), 2))), "ng/dL"
        )
    elif variant == "single_high":
        w.observation("TSH", moment, round(rng.uniform(10.5, 15), 2), "uIU/mL")
        w.observation("FT4", moment, round(rng.uniform(0.6, 1.0), 2), "ng/dL")
    elif variant == "close_pair":
        w.observation("TSH", moment - timedelta(days=rng.randint(7, 25)), round(rng.uniform(10.5, 15), 2), "uIU/mL")
        w.observation("TSH", moment, round(rng.uniform(10.5, 15), 2), "uIU/mL")


def _qtc(w: _Writer, branch: str) -> None:
    """task7: QTc values (ms) and QT-prolonging drugs; prolonged charts always hold such a drug."""
    rng, now = w.rng, DEFAULT_NOW
    if branch != "no_qtc":
        latest = w.before(now, 0.2, 20)
        earlier = [latest - timedelta(days=rng.randint(3, 600)) for _ in range(rng.randint(0, 3))]
        for moment in earlier:
            w.observation("QTCINTERVAL", moment, rng.randint(400, 530), "ms")
        final = rng.randint(505, 580) if branch == "prolonged" else rng.choice((500, rng.randint(400, 495)))
        w.observation("QTCINTERVAL", latest, final, "ms")
    if branch == "prolonged" or rng.random() < 0.4:
        for text in rng.sample(QT_DRUGS, rng.randint(1, 2)):
            w.order(text, "active", w.before(now, 0.5, 10), _route(text), "Every 8 hours as needed")


def _opioids(w: _Writer, branch: str) -> None:
    rng, now = w.rng, DEFAULT_NOW
    if branch in ("covered", "uncovered"):
        for text in rng.sample(OPIOIDS, rng.randint(1, 2)):
            w.order(text, "active", w.before(now, 0.5, 10), _route(text), "Every 4 hours as needed")
    elif rng.random() < 0.5:  # a finished course
        text = rng.choice(OPIOIDS)
        w.order(text, "completed", w.before(now, 30, 300), _route(text), "Every 4 hours as needed")
    if branch == "covered":
        text = rng.choice(NALOXONE)
        w.order(text, "active", w.before(now, 0.2, 5), _route(text), "Once as needed")
    elif branch == "uncovered" and rng.random() < 0.4:  # a stopped rescue order does not cover
        text = rng.choice(NALOXONE)
        w.order(text, "stopped", w.before(now, 20, 200), _route(text), "Once as needed")


def _flu(w: _Writer, branch: str, now: datetime) -> None:
    """task9: CPT 90686 shots; recent = within 365 days of now (2024-01-09 in every official task)."""
    rng = w.rng
    if branch == "recent_flu":
        latest = w.before(now, 20, 330)
    elif branch == "stale_flu":
        latest = w.before(now, 380, 900)
    else:
        return
    w.procedure(FLU, FLU_DISPLAY, latest)
    for years in range(1, rng.randint(1, 3)):
        w.procedure(FLU, FLU_DISPLAY, latest - timedelta(days=365 * years + rng.randint(-20, 20)))


def _covid(w: _Writer, branch: str, now: datetime) -> None:
    """task10: COVIDVACCINE procedures and completed 'COVID-19 VAC...' orders; now 2023-11-07T12:00,
    recent = on or after 2022-11-07 (calendar days)."""
    rng = w.rng
    if branch == "no_dose":
        return
    latest = w.before(now, 20, 330) if branch == "recent_dose" else w.before(now, 380, 900)
    doses = [latest] + [latest - timedelta(days=rng.randint(30, 300)) for _ in range(rng.randint(0, 2))]
    for moment in doses:
        if rng.random() < 0.5:
            w.procedure(COVID, COVID_DISPLAY, moment)
        else:
            w.order(rng.choice(COVID_ORDERS), "completed", moment, "Intramuscular", "Once")


BACKGROUND_LABS = {
    "NA": (139, 3, "mmol/L", 0),
    "CREAT": (1.0, 0.25, "mg/dL", 2),
    "HGB": (12.8, 1.4, "g/dL", 1),
    "WBC": (7.5, 2.0, "10*3/uL", 1),
}
VISITS_PER_SCALE = {"small": 3, "medium": 8, "full": 20}
"""Background visits per v2 patient: a fuller chart at larger scales (longer tool answers), while
every patient keeps under 100 medication requests, so a `_count=200` read always sees all of them."""


def _background(w: _Writer, visits: int) -> None:
    """Ordinary chart content no v2 grader reads: per visit a vital-sign set, routine labs, routine
    orders and the visit itself."""
    rng, now = w.rng, DEFAULT_NOW
    for _ in range(visits):
        moment = w.before(now, 0.5, 900)
        w.observation("PULSE", moment, rng.randint(58, 104), "/min", "vital-signs")
        w.observation("SPO2", moment, rng.randint(92, 100), "%", "vital-signs")
        w.observation("RESP", moment, rng.randint(12, 22), "/min", "vital-signs")
        if rng.random() < 0.6:
            drawn = moment + timedelta(minutes=rng.randint(5, 90))
            for code, (mean, sd, unit, decimals) in BACKGROUND_LABS.items():
                value = round(rng.gauss(mean, sd), decimals)
                w.observation(code, drawn, int(value) if decimals == 0 else value, unit)
        for text in rng.sample(BACKGROUND_MEDS, rng.randint(0, 2)):
            w.order(text, rng.choice(("active", "completed", "completed")), moment, _route(text))
        w.procedure("99214", "OFFICE VISIT, ESTABLISHED PATIENT, MODERATE COMPLEXITY", moment)


def chart_entries(rng: random.Random, mrn: str, chart: V2Chart, scale: str = "small") -> list[tuple[datetime, Factory]]:
    """Every resource of one v2 patient (except its Patient) as (clinical time, factory), unordered;
    `scale` sets how much background the chart carries (VISITS_PER_SCALE)."""
    w = _Writer(rng, mrn)
    _ct_history(w, chart)
    _anticoagulants(w, chart.branch(2))
    _heart_rates(w, chart.branch(3), chart.now(3))
    _catheter(w, chart.branch(4), chart.now(4))
    _thyroid(w, chart.branch(6))
    _qtc(w, chart.branch(7))
    _opioids(w, chart.branch(8))
    _flu(w, chart.branch(9), chart.now(9))
    _covid(w, chart.branch(10), chart.now(10))
    _background(w, VISITS_PER_SCALE[scale])
    return w.entries
