"""The built-in rule-based reference model: solves every MedAgentBench category from the conversation.

It answers with the same text protocol as any model (GET / POST / FINISH), so that the whole
harness — loop, FHIR server, graders, results — can be checked end to end offline with a model
whose correct answer is known. It is stateless: every call re-reads the whole conversation
(prompt, its own earlier actions, the harness's replies) and decides the next action, which is
exactly what a chat-completions endpoint sees.

Answers are computed the way the official graders compute them (GRADING.md): "latest" is the
greatest effectiveDateTime with ties keeping the first entry in server order, "within 24 h"
means effectiveDateTime >= now - 24 h, numbers are passed through as the bundle states them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from medbench.models.builtin.reference_facts import (
    LOINC_HBA1C_ORDER,
    LOINC_SERUM_POTASSIUM,
    NDC_IV_MAGNESIUM,
    NDC_ORAL_POTASSIUM,
    SNOMED_ORTHOPEDIC_REFERRAL,
    ReferenceAgentError,
    TaskFacts,
    parse_datetime,
    read_facts,
)

__all__ = ["ReferenceAgentError", "reference_reply"]

NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
LOINC_SYSTEM = "http://loinc.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
VITAL_SIGNS = {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}

MAGNESIUM_LOW = 1.9
POTASSIUM_GOAL = 3.5
_GET_RESPONSE = "Here is the response from the GET request:"


@dataclass(frozen=True)
class Plan:
    """What the task needs once its data is known: POSTs to send in order, then the FINISH list."""

    answer: list[Any]
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def reference_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The reference model's next action for a chat conversation (OpenAI message dicts).

    The first user message is the task prompt; later assistant/user pairs are this agent's
    actions and the harness's replies. Raises ReferenceAgentError when the conversation gives
    it nothing it can act on (unknown task, failed GET, rejected POST).
    """
    prompt, exchanges = _read_conversation(messages)
    facts = read_facts(prompt)
    records: list[dict[str, Any]] = []
    query = _query_url(facts)
    if query is not None:
        gets = [(action, reply) for action, reply in exchanges if action.startswith("GET")]
        if not gets:
            return f"GET {query}"
        bundle: dict[str, Any] = {}
        for action, reply in gets:
            bundle = _read_bundle(action, reply)
            records.extend(e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict))
        next_url = _next_link(bundle)
        if next_url is not None:
            return f"GET {next_url}"
    plan = _plan(facts, records)
    posts_done = [(action, reply) for action, reply in exchanges if action.startswith("POST")]
    for action, reply in posts_done:
        if reply is None or reply.startswith(("Invalid POST", "Error")):
            raise ReferenceAgentError(f"the harness did not accept {action.splitlines()[0]!r}: {reply!r}")
    if len(posts_done) < len(plan.posts):
        url, payload = plan.posts[len(posts_done)]
        return f"POST {url}\n{json.dumps(payload)}"
    return f"FINISH({json.dumps(plan.answer)})"


def _text(message: Mapping[str, Any]) -> str:
    """Message content as text; OpenAI content-part lists are joined."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content if isinstance(content, str) else ""


def _read_conversation(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[tuple[str, str | None]]]:
    """(prompt, [(agent action, harness reply or None)]) with system messages ignored."""
    turns = [m for m in messages if m.get("role") in ("user", "assistant")]
    if not turns or turns[0].get("role") != "user":
        raise ReferenceAgentError("the conversation must open with a user message holding the task")
    exchanges: list[tuple[str, str | None]] = []
    for turn in turns[1:]:
        if turn["role"] == "assistant":
            exchanges.append((_text(turn).strip(), None))
        elif exchanges and exchanges[-1][1] is None:
            exchanges[-1] = (exchanges[-1][0], _text(turn))
    return _text(turns[0]), exchanges


def _read_bundle(action: str, reply: str | None) -> dict[str, Any]:
    """The Bundle inside a GET reply (`Here is the response from the GET request:\\n{...}. Please ...`)."""
    if reply is None or not reply.startswith(_GET_RESPONSE):
        raise ReferenceAgentError(f"{action!r} failed: {(reply or 'no reply')[:300]}")
    body = reply[len(_GET_RESPONSE) :]
    start = body.find("{")
    try:
        bundle = _bundle_json(body, start)
    except ValueError as exc:
        raise ReferenceAgentError(f"{action!r} returned a body that is not JSON: {exc}") from None
    if not isinstance(bundle, dict):
        raise ReferenceAgentError(f"{action!r} returned JSON that is not a Bundle")
    return bundle


def _bundle_json(body: str, start: int) -> Any:
    """The JSON value starting at `start` (the reply goes on after it): orjson on the text up to
    the last brace, which is the whole value when the rest of the reply has no brace; otherwise
    the standard decoder, which stops where the value ends."""
    end = body.rfind("}") + 1
    try:
        return orjson.loads(body[start:end])
    except orjson.JSONDecodeError:
        return json.JSONDecoder().raw_decode(body, start)[0]


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link", []):
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _query_url(facts: TaskFacts) -> str | None:
    """The one search the task needs (None for tasks 3 and 8, which only write)."""
    base = facts.api_base
    if facts.category == 1:
        return f"{base}Patient?birthdate={facts.birth_date}&_count=5000"
    if facts.category == 2:
        return f"{base}Patient?identifier={quote(_require_mrn(facts))}"
    if facts.lab_code is not None:
        return f"{base}Observation?patient={quote(_require_mrn(facts))}&code={quote(facts.lab_code)}&_count=5000"
    return None


def _require_mrn(facts: TaskFacts) -> str:
    if facts.mrn is None:
        raise ReferenceAgentError(f"task{facts.category} question names no MRN (S followed by digits)")
    return facts.mrn


def _plan(facts: TaskFacts, records: list[dict[str, Any]]) -> Plan:
    category = facts.category
    if category == 1:
        return Plan([_find_patient(facts.question, records)])
    if category == 2:
        return Plan([_age(facts, records)])
    if category == 3:
        return Plan([], [(f"{facts.api_base}Observation", _blood_pressure(facts))])
    if category == 8:
        return Plan([], [(f"{facts.api_base}ServiceRequest", _referral(facts))])
    values = _lab_values(records)
    if category == 4:
        latest = _latest(_within_24h(values, facts.now))
        return Plan([latest[1] if latest else -1])
    if category == 5:
        return _magnesium_plan(facts, _latest(_within_24h(values, facts.now)))
    if category == 6:
        recent = [value for _, value, _ in _within_24h(values, facts.now)]
        return Plan([sum(recent) / len(recent) if recent else -1])
    if category == 7:
        latest = _latest(values)
        return Plan([latest[1] if latest else -1])
    if category == 9:
        return _potassium_plan(facts, _latest(values))
    return _hba1c_plan(facts, _latest(values))


def _find_patient(question: str, patients: list[dict[str, Any]]) -> str:
    """MRN of the first patient whose full name appears in the question, or "Patient not found"."""
    asked = " ".join(question.split()).casefold()
    for patient in patients:
        for name in patient.get("name", []):
            full = " ".join([*name.get("given", []), name.get("family", "")]).split()
            if full and re.search(rf"(?<!\w){re.escape(' '.join(full).casefold())}(?!\w)", asked):
                return _mrn_of(patient)
    return "Patient not found"


def _mrn_of(patient: Mapping[str, Any]) -> str:
    for identifier in patient.get("identifier", []):
        codes = [c.get("code") for c in identifier.get("type", {}).get("coding", [])]
        if "MR" in codes and identifier.get("value"):
            return str(identifier["value"])
    return str(patient["id"])


def _age(facts: TaskFacts, patients: list[dict[str, Any]]) -> int:
    if not patients or "birthDate" not in patients[0]:
        raise ReferenceAgentError(f"no Patient with identifier {facts.mrn} and a birthDate on the server")
    born = datetime.strptime(patients[0]["birthDate"][:10], "%Y-%m-%d").date()
    today = facts.now.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _lab_values(records: list[dict[str, Any]]) -> list[tuple[datetime, Any, str]]:
    """(when, value, effectiveDateTime text) per Observation, in server order."""
    values = []
    for resource in records:
        when = resource.get("effectiveDateTime")
        quantity = resource.get("valueQuantity") or {}
        if resource.get("resourceType") == "Observation" and when and "value" in quantity:
            values.append((parse_datetime(when), quantity["value"], when))
    return values


def _within_24h(values: list[tuple[datetime, Any, str]], now: datetime) -> list[tuple[datetime, Any, str]]:
    cutoff = now - timedelta(hours=24)
    return [v for v in values if v[0] >= cutoff]


def _latest(values: list[tuple[datetime, Any, str]]) -> tuple[datetime, Any, str] | None:
    """Greatest effectiveDateTime; on ties the first in server order wins, as the graders decide."""
    best = None
    for value in values:
        if best is None or value[0] > best[0]:
            best = value
    return best


def _subject(facts: TaskFacts) -> dict[str, str]:
    return {"reference": f"Patient/{_require_mrn(facts)}"}


def _blood_pressure(facts: TaskFacts) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "category": [{"coding": [dict(VITAL_SIGNS)]}],
        "code": {"text": "BP"},
        "effectiveDateTime": facts.now_iso,
        "status": "final",
        "valueString": facts.bp_value,
        "subject": _subject(facts),
    }


def _referral(facts: TaskFacts) -> dict[str, Any]:
    return _service_request(facts, SNOMED_SYSTEM, SNOMED_ORTHOPEDIC_REFERRAL, "Orthopedic surgery referral") | {
        "note": {"text": facts.note},
    }


def _service_request(facts: TaskFacts, system: str, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "authoredOn": facts.now_iso,
        "status": "active",
        "intent": "order",
        "priority": "stat",
        "subject": _subject(facts),
    }


def _medication_request(facts: TaskFacts, ndc: str, display: str, dosage: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"coding": [{"system": NDC_SYSTEM, "code": ndc, "display": display}]},
        "authoredOn": facts.now_iso,
        "dosageInstruction": [dosage],
        "status": "active",
        "intent": "order",
        "subject": _subject(facts),
    }


def _magnesium_plan(facts: TaskFacts, latest: tuple[datetime, Any, str] | None) -> Plan:
    """Task 5: order IV magnesium by deficiency tier when the last 24 h value is <= 1.9 mg/dL."""
    if latest is None:
        return Plan([-1])
    value = latest[1]
    if value > MAGNESIUM_LOW:
        return Plan([value])
    grams = 4 if value < 1 else 2 if value < 1.5 else 1
    dosage = {
        "route": "IV",
        "doseAndRate": [{"doseQuantity": {"value": grams, "unit": "g"}, "rateQuantity": {"value": grams, "unit": "h"}}],
    }
    order = _medication_request(facts, NDC_IV_MAGNESIUM, "Magnesium sulfate in water, IV", dosage)
    return Plan([value], [(f"{facts.api_base}MedicationRequest", order)])


def _potassium_plan(facts: TaskFacts, latest: tuple[datetime, Any, str] | None) -> Plan:
    """Task 9: below 3.5, order 10 mEq oral potassium per 0.1 below goal plus a next-day 8am lab."""
    if latest is None:
        return Plan([-1])
    value = latest[1]
    if value >= POTASSIUM_GOAL:
        return Plan([value])
    dose = round((POTASSIUM_GOAL - value) / 0.1 * 10, 1)
    dosage = {"route": "oral", "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mEq"}}]}
    order = _medication_request(facts, NDC_ORAL_POTASSIUM, "Potassium chloride, oral", dosage)
    morning = (facts.now + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    lab = _service_request(facts, LOINC_SYSTEM, LOINC_SERUM_POTASSIUM, "Serum potassium") | {
        "occurrenceDateTime": morning.isoformat(),
    }
    return Plan(
        [value],
        [(f"{facts.api_base}MedicationRequest", order), (f"{facts.api_base}ServiceRequest", lab)],
    )


def _hba1c_plan(facts: TaskFacts, latest: tuple[datetime, Any, str] | None) -> Plan:
    """Task 10: report the last HbA1c and its date; order a new one if none or older than a year."""
    order = [
        (f"{facts.api_base}ServiceRequest", _service_request(facts, LOINC_SYSTEM, LOINC_HBA1C_ORDER, "Hemoglobin A1c"))
    ]
    if latest is None:
        return Plan([-1], order)
    when, value, text = latest
    return Plan([value, text], order if when < _one_year_before(facts.now) else [])


def _one_year_before(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year - 1)
    except ValueError:
        return now.replace(year=now.year - 1, day=28)
