"""The built-in models on MedAgentBench v2: the reference agent, and `do-nothing`, speaking v2's tools.

The reference agent reads the task (its category from the codes the context names, the patient
from the instruction's MRN, "now" from the context as the graders read it), makes the category's
reads one tool call per step, decides from what they returned exactly as the graders decide, places
the orders that are due one per step, and ends with `finish` giving the answer the instruction
asks for. It sees only the conversation, as any model does: tool results are read back from the
`str()` rendering the loop shows.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from medbench.grading.v2.clock import parse_time, performed_time, task_now
from medbench.models.builtin.reference_facts import ReferenceAgentError

ToolCallSpec = tuple[str, dict[str, Any]]
Read = ToolCallSpec
Decision = tuple[list[ToolCallSpec], list[Any]]

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
QT_DRUGS = (
    "ondansetron",
    "prochlorperazine",
    "haloperidol",
    "quetiapine",
    "olanzapine",
    "risperidone",
    "ziprasidone",
    "clozapine",
    "chlorpromazine",
)
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
NDC = "http://hl7.org/fhir/sid/ndc"
LOCAL = "urn:medbench:local-code"
EVER = "ge1900-01-01"
_MRN = re.compile(r"\b(S\d{4,})\b")

# Category by the codes and drug names the task's context gives (first match wins).
_CATEGORY_MARKERS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (5, ("C64.2", "CON417")),
    (1, ("IMGCT0491", "IMGIL0001")),
    (3, ("HEARTRATE",)),
    (4, ("NUR1373",)),
    (7, ("QTCINTERVAL",)),
    (6, ("FT4",)),
    (9, ("90686",)),
    (10, ("COVIDVACCINE", "91320")),
    (8, ("naloxone",)),
    (2, ("heparin",)),
)


def category_of(text: str) -> int:
    lowered = text.lower()
    for category, markers in _CATEGORY_MARKERS:
        if any(marker.lower() in lowered for marker in markers):
            return category
    raise ReferenceAgentError("the reference agent does not recognise this v2 task (no known code in the context)")


def reference_v2_calls(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[ToolCallSpec]:
    """The reference agent's next call, one per step."""
    opening = next((_text(m) for m in messages if m.get("role") == "user"), "")
    match = _MRN.search(opening.split("</instruction>", 1)[0])
    if not match:
        raise ReferenceAgentError("the instruction names no MRN (S followed by digits)")
    mrn, now = match.group(1), task_now(_context(opening))
    category = category_of(opening)
    results = _results(messages)
    reads = _READS[category](mrn)
    if len(results) < len(reads):
        return [reads[len(results)]]
    data = [_bundle_resources(result) for result in results[: len(reads)]]
    writes, answer = _DECIDE[category](mrn, now, data)
    done = len(results) - len(reads)
    if done < len(writes):
        return [writes[done]]
    return [("finish", {"value": answer})]


def do_nothing_v2(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[ToolCallSpec]:
    """`do-nothing` on v2: `finish` at once with no value (no reads, no writes)."""
    return [("finish", {"value": []})]


def give_up_v2(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[ToolCallSpec]:
    return [("finish", {"value": ["I cannot complete this task."]})]


V2_TOOL_MODELS: dict[str, Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[ToolCallSpec]]] = {
    "reference": reference_v2_calls,
    "do-nothing": do_nothing_v2,
    "give-up": give_up_v2,
}


# --- reading the conversation ----------------------------------------------------------------------------


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content if isinstance(content, str) else ""


def _context(opening: str) -> str:
    _, _, rest = opening.partition("<context>")
    return rest.partition("</context>")[0]


def _results(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    return [_text(m) for m in messages if m.get("role") == "tool"]


def _bundle_resources(shown: str) -> list[dict[str, Any]]:
    if shown.startswith(("Tool error", "Unknown tool")):
        raise ReferenceAgentError(f"a read failed: {shown[:200]}")
    try:
        bundle = ast.literal_eval(shown)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise ReferenceAgentError(f"a tool result is not a rendered JSON value: {error}") from None
    if not isinstance(bundle, dict):
        raise ReferenceAgentError("a search did not return a Bundle")
    return [e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict) and "resource" in e]


# --- reads ---------------------------------------------------------------------------------------------


def _procedures(mrn: str, code: str, why: str) -> Read:
    return (
        "fhir_procedure_search",
        {"search_params": {"code": code, "date": EVER, "patient": mrn}, "explanation": why},
    )


def _labs(mrn: str, code: str, why: str) -> Read:
    return ("fhir_observation_search", {"search_params": {"code": code, "patient": mrn}, "explanation": why})


def _orders(mrn: str) -> Read:
    return ("fhir_medication_request_search", {"category": None, "date": None, "patient": mrn})


_READS: dict[int, Callable[[str], list[Read]]] = {
    1: lambda mrn: [_procedures(mrn, "IMGCT0491,IMGIL0001", "prior CT abdomen/pelvis studies")],
    2: lambda mrn: [_orders(mrn)],
    3: lambda mrn: [_labs(mrn, "HEARTRATE", "heart rate readings")],
    4: lambda mrn: [
        _procedures(mrn, "NUR1373", "urinary catheter insertions"),
        ("fhir_service_request_search_unavailable", {}),
    ],
    5: lambda mrn: [
        (
            "fhir_condition_search",
            {
                "search_params": {"code": "C64.2", "patient": mrn},
                "explanation": "left renal malignancy on the problem list",
            },
        ),
        _procedures(mrn, "IMGCT0491,IMGIL0001,74177", "prior CT abdomen/pelvis studies"),
    ],
    6: lambda mrn: [_labs(mrn, "TSH", "TSH results"), _labs(mrn, "FT4", "free T4 results")],
    7: lambda mrn: [_labs(mrn, "QTCINTERVAL", "QTc measurements"), _orders(mrn)],
    8: lambda mrn: [_orders(mrn)],
    9: lambda mrn: [_procedures(mrn, "90686", "influenza vaccinations")],
    10: lambda mrn: [_procedures(mrn, "COVIDVACCINE", "COVID-19 vaccinations"), _orders(mrn)],
}
# The v2 tools search no ServiceRequests: task4's removal orders cannot be read (upstream's agent
# cannot either); the reference agent assumes none when the catheter is overdue.
_READS[4] = lambda mrn: [_procedures(mrn, "NUR1373", "urinary catheter insertions")]


# --- orders ----------------------------------------------------------------------------------------------


def _subject(mrn: str) -> dict[str, str]:
    return {"reference": f"Patient/{mrn}"}


def _service(
    mrn: str, now: datetime, system: str, code: str, display: str, note: str, when: datetime | None = None
) -> ToolCallSpec:
    return (
        "fhir_service_request_create",
        {
            "resourceType": "ServiceRequest",
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "authoredOn": now.isoformat(),
            "status": "active",
            "intent": "order",
            "priority": "stat",
            "subject": _subject(mrn),
            "note": {"text": note},
            "occurrenceDateTime": (when or now).isoformat(),
        },
    )


def _medication(
    mrn: str,
    now: datetime,
    text: str,
    code: str,
    route: str,
    dose: float,
    unit: str,
    every_hours: float,
    status: str = "active",
) -> ToolCallSpec:
    return (
        "fhir_medication_request_create",
        {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"coding": [{"system": NDC, "code": code, "display": text}], "text": text},
            "authoredOn": now.isoformat(),
            "dosageInstruction": [
                {
                    "route": route,
                    "doseAndRate": [
                        {
                            "doseQuantity": {"value": dose, "unit": unit},
                            "rateQuantity": {"value": every_hours, "unit": "h"},
                        }
                    ],
                }
            ],
            "status": status,
            "intent": "order",
            "subject": _subject(mrn),
        },
    )


def _stop(mrn: str, now: datetime, order: dict[str, Any]) -> ToolCallSpec:
    """Discontinuing an order: the v2 tools have no update, so a new MedicationRequest with status stopped."""
    concept = order.get("medicationCodeableConcept") or {}
    coding = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    first = coding[0] if coding else {}
    text = str(concept.get("text") or first.get("display") or "medication")
    return _medication(
        mrn, now, text, str(first.get("code") or "unknown"), "as ordered", 1, "dose", 24, status="stopped"
    )


def _text_of(order: dict[str, Any]) -> str:
    return str((order.get("medicationCodeableConcept") or {}).get("text", "")).lower()


def _latest_time(resources: list[dict[str, Any]], **kwargs: bool) -> datetime | None:
    times = [t for t in (performed_time(r, **kwargs) for r in resources) if t is not None]
    return max(times) if times else None


def _date_answer(when: datetime | None, resources: list[dict[str, Any]], **kwargs: bool) -> list[Any]:
    if when is None:
        return [-1]
    for r in resources:
        if performed_time(r, **kwargs) == when:
            period = r.get("performedPeriod") or {}
            text = r.get("performedDateTime") or period.get("end") or period.get("start") or r.get("authoredOn")
            return [str(text)]
    return [when.isoformat()]


# --- decisions (mirroring medbench.grading.v2.decisions) -------------------------------------------------


def _ct_follow_up(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    cts = data[0]
    last = _latest_time(cts)
    writes = []
    if last is None or last < now - timedelta(days=365):
        writes.append(
            _service(mrn, now, CPT, "74177", "CT abdomen and pelvis with IV contrast", "Renal mass follow-up")
        )
    return writes, _date_answer(last, cts)


def _dvt_prophylaxis(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    active = [o for o in data[0] if o.get("status") == "active"]
    anticoagulants = [o for o in active if any(word in _text_of(o) for word in ANTICOAGULANTS)]
    correct = [
        o for o in anticoagulants if "heparin" in _text_of(o) and ("5000" in _text_of(o) or "5,000" in _text_of(o))
    ]
    writes: list[ToolCallSpec] = []
    keep = max(correct, key=lambda o: str(o.get("authoredOn") or "")) if correct else None
    if keep is None:
        writes.append(
            _medication(mrn, now, "Heparin 5000 units SC every 8 hours", "63323-0262-01", "SC", 5000, "units", 8)
        )
    writes += [_stop(mrn, now, o) for o in anticoagulants if o is not keep]
    return writes, [-1]


def _heart_rate(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    readings = []
    for r in data[0]:
        when, value = parse_time(r.get("effectiveDateTime")), (r.get("valueQuantity") or {}).get("value")
        if when is not None and value is not None:
            readings.append((when, float(value)))
    answer: list[Any] = []
    for hours in (6, 12):
        window = [v for t, v in readings if now - timedelta(hours=hours) <= t <= now]
        answer.append(round(sum(window) / len(window), 2) if window else -1)
    return [], answer


def _catheter(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    last = _latest_time(data[0])
    writes = []
    if last is not None and now - last > timedelta(hours=48):
        writes.append(
            _service(
                mrn,
                now,
                LOCAL,
                "NUR1373",
                "Remove indwelling urinary catheter",
                "Catheter in place more than 48 hours: remove",
            )
        )
    return writes, [-1]


def _renal_mass(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    diagnosis, cts = data
    if not diagnosis:
        return [], [-1]
    last = _latest_time(cts)
    if last is not None and now - last <= timedelta(days=90):
        return [], [-1]
    return [
        _service(mrn, now, CPT, "74177", "CT abdomen and pelvis with IV contrast", "Left renal mass surveillance"),
        _service(
            mrn,
            now,
            LOCAL,
            "CON417",
            "Interventional radiology referral",
            "Assess the left renal mass for biopsy or ablation",
        ),
    ], [-1]


def _thyroid(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    def values(resources: list[dict[str, Any]]) -> list[tuple[datetime, float]]:
        found = []
        for r in resources:
            when, value = parse_time(r.get("effectiveDateTime")), (r.get("valueQuantity") or {}).get("value")
            if when is not None and value is not None:
                found.append((when, float(value)))
        return found

    tsh, ft4 = values(data[0]), values(data[1])
    high = [t for t, v in tsh if v > 10]
    branch_a = any(abs((b - a).days) >= 30 for a in high for b in high)
    latest_tsh = max(tsh, key=lambda m: m[0]) if tsh else None
    latest_ft4 = max(ft4, key=lambda m: m[0]) if ft4 else None
    branch_b = (
        not branch_a
        and latest_tsh is not None
        and latest_ft4 is not None
        and 4.5 <= latest_tsh[1] <= 10
        and 0.8 <= latest_ft4[1] <= 1.8
    )
    writes: list[ToolCallSpec] = []
    if branch_a:
        writes.append(
            _medication(mrn, now, "Levothyroxine 25 mcg tablet, 25 mcg PO daily", "0378-1800-01", "PO", 25, "mcg", 24)
        )
    if branch_a or branch_b:
        later = now + timedelta(weeks=6 if branch_a else 13)
        writes.append(_service(mrn, now, LOINC, "3016-3", "TSH", "Repeat TSH per thyroid protocol", later))
        writes.append(
            _service(mrn, now, LOINC, "3024-7", "FT4 (free T4)", "Repeat free T4 per thyroid protocol", later)
        )
    answer = [latest_tsh[1] if latest_tsh else -1, latest_ft4[1] if latest_ft4 else -1]
    return writes, answer


def _qtc(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    qtcs, orders = data
    if not qtcs:
        return [], [-1]
    latest = max(qtcs, key=lambda r: parse_time(r.get("effectiveDateTime")) or datetime.min.replace(tzinfo=now.tzinfo))
    value = float((latest.get("valueQuantity") or {}).get("value", 0))
    if value <= 500:
        return [], [value]
    qt_orders = [o for o in orders if o.get("status") == "active" and any(d in _text_of(o) for d in QT_DRUGS)]
    writes = [_stop(mrn, now, o) for o in qt_orders]
    writes.append(
        _service(
            mrn,
            now,
            SNOMED,
            "445118002",
            "12-lead ECG",
            "Repeat 12-lead ECG for prolonged QTc",
            now + timedelta(hours=24),
        )
    )
    return writes, [value]


def _naloxone(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    active = [o for o in data[0] if o.get("status") == "active"]
    opioid = any(word in _text_of(o) for o in active for word in OPIOIDS)
    covered = any("naloxone" in _text_of(o) or "narcan" in _text_of(o) for o in active)
    if not opioid or covered:
        return [], [-1]
    return [_medication(mrn, now, "Naloxone 4 mg nasal spray", "69547-0353-02", "intranasal", 4, "mg", 24)], [-1]


def _influenza(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    shots = data[0]
    last = _latest_time(shots)
    writes = []
    if last is None or now - last > timedelta(days=365):
        writes.append(
            _service(
                mrn,
                now,
                CPT,
                "90686",
                "Influenza vaccine, quadrivalent, preservative free, IM",
                "Annual influenza vaccination",
            )
        )
    return writes, _date_answer(last, shots)


def _covid(mrn: str, now: datetime, data: list[list[dict[str, Any]]]) -> Decision:
    procedures, orders = data
    doses = procedures + [o for o in orders if o.get("status") == "completed" and "covid-19 vac" in _text_of(o)]
    last = _latest_time(doses, with_authored=True)
    writes = []
    if last is None or (now.date() - last.date()).days > 365:
        writes.append(_service(mrn, now, CPT, "91320", "COVID-19 vaccine booster dose", "COVID-19 booster due"))
    return writes, _date_answer(last, doses, with_authored=True)


_DECIDE: dict[int, Callable[[str, datetime, list[list[dict[str, Any]]]], Decision]] = {
    1: _ct_follow_up,
    2: _dvt_prophylaxis,
    3: _heart_rate,
    4: _catheter,
    5: _renal_mass,
    6: _thyroid,
    7: _qtc,
    8: _naloxone,
    9: _influenza,
    10: _covid,
}
