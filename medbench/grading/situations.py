"""The grading situation of an official task, computed from what a FHIR server serves.

Uses the graders' own reads (the same URLs, windows, "latest" rule and thresholds), so a server
whose computed situations equal medbench/data/official_situations.jsonl grades every official task in
its real branch. Task1 has no grader read; its situation is the name + birth date search an agent
would make. Used by tests/test_ehr_situations.py on the embedded EHR and by
scripts/check_situations.py on any server (the official Docker image included).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from medbench.ehr.seating import NamedPerson
from medbench.ehr.situations import Situation
from medbench.grading.fhir_reads import (
    Gateway,
    age_at_now,
    fetch_json,
    latest,
    read_birth_date,
    read_observations,
    within_24h,
)
from medbench.grading.official import A1C_STALE_BEFORE, magnesium_tier, potassium_dose_meq
from medbench.tasks.task import Task


def _number(value: Any) -> str:
    return str(float(value))


def _patients(gateway: Gateway, api_base: str, **params: str) -> list[dict[str, Any]]:
    bundle = fetch_json(gateway, f"{api_base}Patient?{urlencode(params)}&_count=5000&_format=json")
    return [entry["resource"] for entry in bundle.get("entry", [])]


def _task1(task: Task, gateway: Gateway, api_base: str) -> tuple[str | None, str, dict[str, Any]]:
    person = NamedPerson.parse(task.instruction)
    if person is None:
        return None, "unparsed", {}
    found = _patients(
        gateway, api_base, given=person.given[0], family=person.family, birthdate=person.birth_date.isoformat()
    )
    if len(found) == 1:
        name = found[0]["name"][0]
        match = (tuple(name.get("given", [])), name.get("family"), found[0]["birthDate"]) == (
            person.given,
            person.family,
            person.birth_date.isoformat(),
        )
        return found[0]["id"], "found", {"real_birthDate": found[0]["birthDate"], "name_dob_match": match}
    if found:
        return None, f"found_{len(found)}", {}
    namesakes = _patients(gateway, api_base, **{"given:exact": " ".join(person.given), "family:exact": person.family})
    if not namesakes:
        return None, "not_found", {}
    born = sorted(p["birthDate"] for p in namesakes)[0]
    return None, "not_found", {"near_miss": {"same_name_as_task": True, "birthDate": born}}


def _magnesium(task: Task, gateway: Gateway, api_base: str, mrn: str) -> tuple[str, dict[str, Any]]:
    recent = latest(within_24h(read_observations(gateway, api_base, mrn, "MG")))
    value = recent.value if recent else None
    if task.category == 4:
        return ("none_24h" if value is None else f"mg_24h={_number(value)}"), {"latest_mg_within_24h": value}
    if value is None or value > 1.9:
        return ("missing" if value is None else "normal"), {"latest_mg_within_24h": value, "required_order": None}
    grams, hours = magnesium_tier(value)
    tier = "mild" if value >= 1.5 else "moderate" if value >= 1 else "severe"
    return tier, {"latest_mg_within_24h": value, "required_order": f"{grams} g / {hours} h"}


def _glucose(task: Task, gateway: Gateway, api_base: str, mrn: str) -> tuple[str, dict[str, Any]]:
    measurements = read_observations(gateway, api_base, mrn, "GLU")
    if task.category == 7:
        last = latest(measurements)
        return ("none" if last is None else f"latest_glu={_number(last.value)}"), {
            "latest_glucose": last.value if last else None
        }
    total, count = 0.0, 0
    for m in within_24h(measurements):
        total += m.value
        count += 1
    if count == 0:
        return "none_24h", {"average_glucose_within_24h": None}
    mean = total / count
    return f"avg_glu_24h={round(mean, 4)}", {"average_glucose_within_24h": mean}


def _potassium(gateway: Gateway, api_base: str, mrn: str) -> tuple[str, dict[str, Any]]:
    last = latest(read_observations(gateway, api_base, mrn, "K"))
    if last is None:
        return "missing", {"latest_k": None, "required_dose_mEq": None}
    if last.value >= 3.5:
        return "normal", {"latest_k": last.value, "required_dose_mEq": None}
    return "low", {"latest_k": last.value, "required_dose_mEq": round(potassium_dose_meq(last.value), 2)}


def _hba1c(gateway: Gateway, api_base: str, mrn: str) -> tuple[str, dict[str, Any]]:
    last = latest(read_observations(gateway, api_base, mrn, "A1C"))
    if last is None:
        return "missing", {"latest_a1c": None, "latest_a1c_time": None, "order_required": True}
    stale = last.time < A1C_STALE_BEFORE
    return ("stale" if stale else "fresh"), {
        "latest_a1c": last.value,
        "latest_a1c_time": last.time_text,
        "order_required": stale,
    }


def observe_situation(task: Task, gateway: Gateway, api_base: str) -> Situation:
    """The task's situation on the server behind `gateway` (display URLs under `api_base`).
    A failed read raises medbench.grading.fhir_reads.ReadError."""
    if task.category == 1:
        mrn, situation, facts = _task1(task, gateway, api_base)
        return Situation(task.id, 1, mrn, situation, facts)
    mrn = task.eval_MRN or ""
    if task.category == 2:
        birth = read_birth_date(gateway, api_base, mrn)
        age = age_at_now(birth)
        return Situation(task.id, 2, mrn, f"age={age}", {"birthDate": birth.date().isoformat(), "age": age})
    if task.category in (3, 8):
        exists = bool(_patients(gateway, api_base, identifier=mrn))
        return Situation(task.id, task.category, mrn, "n/a" if exists else "no_patient", {})
    if task.category in (4, 5):
        situation, facts = _magnesium(task, gateway, api_base, mrn)
    elif task.category in (6, 7):
        situation, facts = _glucose(task, gateway, api_base, mrn)
    elif task.category == 9:
        situation, facts = _potassium(gateway, api_base, mrn)
    else:
        situation, facts = _hba1c(gateway, api_base, mrn)
    return Situation(task.id, task.category, mrn, situation, facts)


def situation_differences(expected: Situation, observed: Situation) -> list[str]:
    """`task: field expected -> observed` for each part of the two situations that differs."""
    return [
        f"{expected.task_id}: {name} {getattr(expected, name)!r} -> {getattr(observed, name)!r}"
        for name in ("mrn", "situation", "facts")
        if getattr(expected, name) != getattr(observed, name)
    ]
