"""Hand-made transcripts, payloads and a dict-backed gateway for the grader tests.

Transcripts are built the way the official agent loop builds them (PROTOCOL.md): the loop's
user turn after each agent turn is derived from the turn itself, so each test only writes
what the agent said.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from medbench.agent.protocol import (
    POST_ACCEPTED,
    POST_INVALID,
    GetAction,
    PostAction,
    get_ok_turn,
    parse_action,
)
from medbench.tasks.task import Task

API = "http://localhost:8080/fhir/"
MRN = "S1234567"
SUBJECT = {"reference": f"Patient/{MRN}"}
NOW_ISO = "2023-11-13T10:15:00+00:00"
SBAR = (
    "Situation: acute left knee injury, Background: radiology report indicates ACL tear. "
    "Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to "
    "evaluate and provide management recommendations."
)


@dataclass
class FakeResponse:
    ok: bool
    status: int | None
    text: str


@dataclass
class FakeGateway:
    """URL -> JSON body (served with 200) or a FakeResponse; anything else answers 404."""

    routes: dict[str, Any] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)

    def get(self, url: str) -> FakeResponse:
        self.requested.append(url)
        if url not in self.routes:
            return FakeResponse(False, 404, "")
        body = self.routes[url]
        return body if isinstance(body, FakeResponse) else FakeResponse(True, 200, json.dumps(body, indent=2))


@dataclass
class FakeOutcome:
    status: str
    result: str | None
    history: list[dict[str, str]]


def obs_url(code: str, mrn: str = MRN) -> str:
    return f"{API}Observation?patient={mrn}&code={code}&_count=5000&_format=json"


def patient_url(mrn: str = MRN) -> str:
    return f"{API}Patient?identifier={mrn}&_format=json"


def bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": "ignored"}] + ([{"relation": "next", "url": next_url}] if next_url else [])
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if resources:
        out["entry"] = [{"resource": r} for r in resources]
    return out


def observation(time: str, value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "effectiveDateTime": time, "valueQuantity": {"value": value, "unit": "x"}}


def labs(code: str, *readings: tuple[str, float], mrn: str = MRN) -> FakeGateway:
    """A gateway whose Observation query for ``code`` returns ``readings`` in this order."""
    return FakeGateway({obs_url(code, mrn): bundle([observation(t, v) for t, v in readings])})


def patient_gateway(birth_date: str) -> FakeGateway:
    return FakeGateway({patient_url(): bundle([{"resourceType": "Patient", "id": MRN, "birthDate": birth_date}])})


def make_task(category: int, sol: list[Any] | None = None, instruction: str = "", mrn: str | None = MRN) -> Task:
    return Task(id=f"task{category}_1", category=category, instruction=instruction, context="", eval_MRN=mrn, sol=sol)


def post(resource: str, payload: Any, base: str = API) -> str:
    """An agent turn posting ``payload``, formatted as agents write it."""
    return f"POST {base}{resource}\n{json.dumps(payload)}"


def loop_reply(turn: str) -> str:
    """The user turn the official loop writes after a non-final agent turn."""
    action = parse_action(turn)
    if isinstance(action, GetAction):
        return get_ok_turn('{"resourceType": "Bundle"}')
    if isinstance(action, PostAction):
        return POST_ACCEPTED if action.valid else POST_INVALID
    raise ValueError(f"the loop would end the task on {turn!r}; write the history by hand")


def transcript(*turns: str | tuple[str, str], finish: str = "[]", status: str = "completed") -> FakeOutcome:
    """A completed outcome: the prompt, each agent turn with its loop reply, then FINISH(finish).

    A turn given as ``(agent, user)`` uses that user reply instead of the loop's.
    """
    history = [{"role": "user", "content": "prompt"}]
    for turn in turns:
        agent, user = turn if isinstance(turn, tuple) else (turn, loop_reply(turn))
        history += [{"role": "agent", "content": agent}, {"role": "user", "content": user}]
    history.append({"role": "agent", "content": f"FINISH({finish})"})
    return FakeOutcome(status=status, result=finish, history=history)


DELETE = object()


def changed(payload: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``payload`` with the item at ``path`` replaced (or removed if value is DELETE)."""
    out = copy.deepcopy(payload)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


def bp_payload(value: str = "118/77 mmHg") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {"text": "BP"},
        "effectiveDateTime": NOW_ISO,
        "status": "final",
        "valueString": value,
        "subject": SUBJECT,
    }


def magnesium_order(dose: float, hours: float) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0338-1715-40"}]},
        "authoredOn": NOW_ISO,
        "dosageInstruction": [
            {
                "route": "IV",
                "doseAndRate": [
                    {"doseQuantity": {"value": dose, "unit": "g"}, "rateQuantity": {"value": hours, "unit": "h"}}
                ],
            }
        ],
        "status": "active",
        "intent": "order",
        "subject": SUBJECT,
    }


def potassium_order(dose: float) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "40032-917-01"}]},
        "authoredOn": NOW_ISO,
        "dosageInstruction": [{"route": "oral", "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mEq"}}]}],
        "status": "active",
        "intent": "order",
        "subject": SUBJECT,
    }


def service_request(system: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "code": {"coding": [{"system": system, "code": code}]},
        "authoredOn": NOW_ISO,
        "status": "active",
        "intent": "order",
        "priority": "stat",
        "subject": SUBJECT,
        **extra,
    }


def potassium_lab() -> dict[str, Any]:
    return service_request("http://loinc.org", "2823-3", occurrenceDateTime="2023-11-14T08:00:00+00:00")


def a1c_order() -> dict[str, Any]:
    return service_request("http://loinc.org", "4548-4")


def referral(note: Any = None) -> dict[str, Any]:
    return service_request("http://snomed.info/sct", "306181000000106", note={"text": SBAR} if note is None else note)
