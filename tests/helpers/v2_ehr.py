"""A hand-written, in-memory stand-in for the EHR the v2 graders and tools read, for unit tests.

It answers the GET shapes v2 sends (`Resource?patient=..&code=A,B&status=..&_lastUpdated=gt..`)
with a Bundle in JSON text, and stores POSTs stamped with a time after the 2025 cut-off, as the
embedded server stamps writes. Only what the graders' decisions depend on is modelled.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from medbench.tasks.task import Task

API = "http://localhost:8080/fhir/"
MRN = "S2000001"
SUBJECT = {"reference": f"Patient/{MRN}"}
SEEDED = "2024-12-30T21:00:00+00:00"
WRITTEN = "2026-12-05T02:00:00+00:00"


@dataclass
class Response:
    ok: bool
    status: int | None
    text: str
    error_message: str | None = None
    refused: bool = False


@dataclass
class FakeEhr:
    """Resources by type; GETs filter them, POSTs add them (or are refused when `refuse` says so)."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def add(self, resource: dict[str, Any], last_updated: str = SEEDED) -> FakeEhr:
        stored = copy.deepcopy(resource)
        stored.setdefault("id", str(len(self.resources) + 1))
        stored.setdefault("subject", SUBJECT)
        stored.setdefault("meta", {"lastUpdated": last_updated})
        self.resources.append(stored)
        return self

    def get(self, url: str) -> Response:
        self.requested.append(url)
        parts = urlsplit(url)
        kind = parts.path.rsplit("/", 1)[-1]
        params = dict(parse_qsl(parts.query))
        found = [r for r in self.resources if r["resourceType"] == kind and _matches(r, params)]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [{"resource": r} for r in found],
        }
        return Response(True, 200, json.dumps(bundle))

    def post(self, url: str, payload: Any) -> Response:
        kind = urlsplit(url).path.rsplit("/", 1)[-1]
        if kind in self.refuse or not isinstance(payload, dict) or payload.get("resourceType") != kind:
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}
            return Response(
                False, 400, json.dumps(outcome), error_message=f"400 Client Error: Bad Request for url: {url}"
            )
        stored = copy.deepcopy(payload)
        stored["id"] = str(len(self.resources) + 1)
        stored["meta"] = {"lastUpdated": WRITTEN}
        self.resources.append(stored)
        return Response(True, 201, json.dumps(stored))

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["meta"]["lastUpdated"] == WRITTEN]


def _codes(resource: dict[str, Any]) -> set[str]:
    codes = set()
    for key in ("code", "medicationCodeableConcept"):
        concept = resource.get(key) or {}
        codes |= {str(c.get("code")) for c in concept.get("coding") or []}
    return codes


def _matches(resource: dict[str, Any], params: dict[str, str]) -> bool:
    if "patient" in params and resource.get("subject", {}).get("reference") not in (
        f"Patient/{params['patient']}",
        params["patient"],
    ):
        return False
    if "code" in params and not (_codes(resource) & set(params["code"].split(","))):
        return False
    if "status" in params and resource.get("status") != params["status"]:
        return False
    if "_lastUpdated" in params:
        bound = params["_lastUpdated"].removeprefix("gt").replace("Z", "+00:00")
        if not resource["meta"]["lastUpdated"] > bound:
            return False
    return True


def v2_task(category: int, context: str = "", number: int = 1) -> Task:
    return Task(
        id=f"task{category}_{number}",
        category=category,
        instruction=f"Instruction: a v2 task for {MRN}.",
        context=context,
        eval_MRN=MRN,
    )


def procedure(code: str, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": code}]},
        "performedDateTime": when,
        **extra,
    }


def observation(code: str, when: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"code": code}], "text": code},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value},
    }


def medication(text: str, status: str = "active", authored: str = "2023-10-01T08:00:00+00:00") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "authoredOn": authored,
        "medicationCodeableConcept": {"coding": [{"code": "0000"}], "text": text},
    }


def condition(code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": {"coding": [{"code": code}]}}


def service_request(code: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "status": status, "intent": "order", "code": {"coding": [{"code": code}]}}


@dataclass
class Attempt:
    """What graders read of an attempt: status, FINISH result, the wrapper's history."""

    history: list[dict[str, str]] = field(default_factory=list)
    result: str | None = "[-1]"
    status: str = "completed"
    # False: graders see the history as upstream's wrapper ends a finished run (a finish item last).
    raw: bool = False

    def as_graded(self) -> Attempt:
        """The attempt with its closing `finish(...)` item, unless it is raw or already has one."""
        if (
            self.raw
            or self.status != "completed"
            or (self.history and self.history[-1]["content"].startswith("finish("))
        ):
            return self
        value = json.loads(self.result or "[]")
        return Attempt(
            [*self.history, {"role": "agent", "content": f"finish({ {'value': value}!r})"}],
            self.result,
            self.status,
            raw=True,
        )

    def says(self, text: str) -> Attempt:
        self.history.append({"role": "agent", "content": text})
        return self

    def posts(
        self, resource_type: str, payload: dict[str, Any], accepted: bool = True, ehr: FakeEhr | None = None
    ) -> Attempt:
        self.history.append({"role": "agent", "content": f"POST {API}{resource_type}\n{json.dumps(payload)}"})
        if accepted:
            self.history.append({"role": "agent", "content": "POST request accepted"})
            if ehr is not None:
                ehr.post(API + resource_type, payload)
        return self

    def finishes(self, value: list[Any]) -> Attempt:
        self.history.append({"role": "agent", "content": f"finish({ {'value': value}!r})"})
        self.result = json.dumps(value)
        return self
