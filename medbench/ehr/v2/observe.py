"""Which branch a v2 task meets on a FHIR server, found through the v2 graders' own reads.

Used to check a seated EHR (every official task in its labelled branch) and the generated task
set (every branch covered) against what a server really answers, over HTTP. The decisions follow
upstream's v2 graders (GRADING.md): `_count=5000` reads in one bundle, only resources last updated
at or before the cut-off, the category's "now"; task1 is read against the task's own now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from medbench.ehr.v2.branches import CUTOFF, DEFAULT_NOW

GetJson = Callable[[str], dict[str, Any]]
"""Answers a relative search URL ("Procedure?patient=...") with the parsed Bundle."""

ANTICOAGULANTS = (
    "heparin",
    "enoxaparin",
    "dalteparin",
    "fondaparinux",
    "apixaban",
    "rivaroxaban",
    "dabigatran",
    "warfarin",
)
OPIOIDS = ("hydromorphone", "oxycodone", "fentanyl", "hydrocodone", "morphine")


def _baseline(get_json: GetJson, query: str) -> list[dict[str, Any]]:
    bundle = get_json(f"{query}&_count=5000&_format=json")
    resources = [entry["resource"] for entry in bundle.get("entry", [])]
    return [
        r
        for r in resources
        if "lastUpdated" not in r["meta"] or datetime.fromisoformat(r["meta"]["lastUpdated"]) <= CUTOFF
    ]


def _performed(procedure: dict[str, Any]) -> datetime | None:
    period = procedure.get("performedPeriod") or {}
    stamp = procedure.get("performedDateTime") or period.get("end") or period.get("start")
    return datetime.fromisoformat(stamp) if stamp else None


def _latest_performed(procedures: list[dict[str, Any]]) -> datetime | None:
    dates = [d for d in map(_performed, procedures) if d is not None]
    return max(dates) if dates else None


def _texts(requests: list[dict[str, Any]]) -> list[str]:
    return [r["medicationCodeableConcept"].get("text", "").lower() for r in requests]


def observe_branch(category: int, mrn: str, now: datetime, get_json: GetJson) -> str:
    """The branch name (medbench/ehr/v2/branches.py) patient `mrn` meets in `category` at `now`;
    task1 may also answer "recent_ct", a branch the EHR never seats."""
    patient = f"patient={mrn}"
    if category == 1:
        latest = _latest_performed(_baseline(get_json, f"Procedure?{patient}&code=IMGCT0491,IMGIL0001"))
        return "no_ct" if latest is None else "stale_ct" if latest < now - timedelta(days=365) else "recent_ct"
    if category == 2:
        texts = [
            t
            for t in _texts(_baseline(get_json, f"MedicationRequest?{patient}&status=active"))
            if any(a in t for a in ANTICOAGULANTS)
        ]
        heparin = any("heparin" in t and ("5,000" in t or "5000" in t) for t in texts)
        if len(texts) <= 1:
            return ("one_heparin" if heparin else "one_other") if texts else "none"
        return "duplicate_with_heparin" if heparin else "duplicates_without_heparin"
    if category == 3:
        values = []
        for obs in _baseline(get_json, f"Observation?{patient}&code=HEARTRATE"):
            value = (obs.get("valueQuantity") or {}).get("value")
            if obs.get("effectiveDateTime") and value is not None:
                values.append(datetime.fromisoformat(obs["effectiveDateTime"]))
        if any(now - timedelta(hours=6) <= t <= now for t in values):
            return "both_windows"
        return "only_6_to_12h" if any(now - timedelta(hours=12) <= t <= now for t in values) else "none_in_12h"
    if category == 4:
        latest = _latest_performed(_baseline(get_json, f"Procedure?{patient}&code=NUR1373"))
        if latest is None:
            return "no_catheter"
        if now - latest <= timedelta(hours=48):
            return "recent_catheter"
        ordered = _baseline(get_json, f"ServiceRequest?{patient}&code=NUR1373&status=active")
        return "removal_ordered" if ordered else "removal_due"
    if category == 5:
        if not _baseline(get_json, f"Condition?{patient}&code=C64.2"):
            return "no_diagnosis"
        latest = _latest_performed(_baseline(get_json, f"Procedure?{patient}&code=IMGCT0491,IMGIL0001,74177"))
        return "ct_due" if latest is None or now - latest > timedelta(days=90) else "recent_ct"
    if category == 6:
        return _thyroid_branch(get_json, patient)
    if category == 7:
        qtcs = _baseline(get_json, f"Observation?{patient}&code=QTCINTERVAL")
        if not qtcs:
            return "no_qtc"
        newest = max(qtcs, key=lambda o: o["meta"].get("lastUpdated", ""))
        return "prolonged" if newest["valueQuantity"]["value"] > 500 else "normal_qtc"
    if category == 8:
        texts = _texts(_baseline(get_json, f"MedicationRequest?{patient}&status=active"))
        if not any(o in t for t in texts for o in OPIOIDS):
            return "no_opioid"
        return "covered" if any("naloxone" in t or "narcan" in t for t in texts) else "uncovered"
    if category == 9:
        latest = _latest_performed(_baseline(get_json, f"Procedure?{patient}&code=90686"))
        return "no_flu" if latest is None else "stale_flu" if now - latest > timedelta(days=365) else "recent_flu"
    if category == 10:
        dates = [
            d for d in map(_performed, _baseline(get_json, f"Procedure?{patient}&code=COVIDVACCINE")) if d is not None
        ]
        for order in _baseline(get_json, f"MedicationRequest?{patient}&status=completed"):
            if "covid-19 vac" in order["medicationCodeableConcept"].get("text", "").lower():
                dates.append(datetime.fromisoformat(order["authoredOn"]))
        if not dates:
            return "no_dose"
        return "stale_dose" if (now.date() - max(dates).date()).days > 365 else "recent_dose"
    raise ValueError(f"unknown v2 category {category}")


def _thyroid_branch(get_json: GetJson, patient: str) -> str:
    def series(code: str) -> list[tuple[datetime, float]]:
        found = _baseline(get_json, f"Observation?{patient}&code={code}")
        return sorted(
            (datetime.fromisoformat(o["effectiveDateTime"]), float(o["valueQuantity"]["value"])) for o in found
        )

    tsh, ft4 = series("TSH"), series("FT4")
    high = [t for t, v in tsh if v > 10]
    if any((later - earlier).days >= 30 for earlier in high for later in high):
        return "repeat_high"
    if tsh and ft4 and 4.5 <= tsh[-1][1] <= 10 and 0.8 <= ft4[-1][1] <= 1.8:
        return "borderline"
    return "neither"


def branch_now(category: int, context_now: datetime) -> datetime:
    """task1's year is read from the task's own now (upstream reads the wall clock; see GRADING.md)."""
    return context_now if category in (1, 3, 4, 9, 10) else DEFAULT_NOW
