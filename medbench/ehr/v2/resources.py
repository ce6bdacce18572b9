"""FHIR R4 resource dicts for what v2 graders read, in the shapes the official image's data has
(DATA.md of the shared v2 reference): local codes in the coding slots, upper-case medication
texts, explicit +00:00 offsets, and a `meta` on every resource.

Pure builders: values in, fresh JSON-ready dicts out, `id` and `meta` first as HAPI writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medbench.ehr.resources import CPT, LOINC, NDC, OBSERVATION_CATEGORY, TERMINOLOGY, UCUM, instant, subject, timestamp

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def meta(last_updated: datetime, source: str) -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": instant(last_updated), "source": source}


def procedure(
    rid: str, mrn: str, code: str, display: str, performed: datetime, updated: datetime, source: str
) -> dict[str, Any]:
    """A performed procedure (imaging, catheter insertion, vaccination) dated by performedDateTime."""
    return {
        "resourceType": "Procedure",
        "id": rid,
        "meta": meta(updated, source),
        "status": "completed",
        "code": {"coding": [{"system": CPT, "code": code, "display": display}], "text": display},
        "subject": subject(mrn),
        "performedDateTime": timestamp(performed),
    }


def condition(
    rid: str, mrn: str, icd10: str, display: str, onset: datetime, updated: datetime, source: str
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "meta": meta(updated, source),
        "clinicalStatus": {
            "coding": [{"system": f"{TERMINOLOGY}/condition-clinical", "code": "active", "display": "Active"}]
        },
        "verificationStatus": {
            "coding": [{"system": f"{TERMINOLOGY}/condition-ver-status", "code": "confirmed", "display": "Confirmed"}]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": f"{TERMINOLOGY}/condition-category",
                        "code": "problem-list-item",
                        "display": "Problem List Item",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": ICD10, "code": icd10, "display": display}], "text": display},
        "subject": subject(mrn),
        "onsetDateTime": timestamp(onset),
        "recordedDate": timestamp(onset),
    }


def observation(
    rid: str,
    mrn: str,
    code: str,
    effective: datetime,
    value: float | None,
    unit: str,
    updated: datetime,
    source: str,
    category: str = "laboratory",
) -> dict[str, Any]:
    """A lab-style observation (HEARTRATE, TSH, FT4 and QTCINTERVAL are filed as laboratory in the
    real data); `value` None gives a row with no result (graders skip it), as charts sometimes hold."""
    display = "Laboratory" if category == "laboratory" else "Vital Signs"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "meta": meta(updated, source),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category, "display": display}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": code}], "text": code},
        "subject": subject(mrn),
        "effectiveDateTime": timestamp(effective),
        "issued": instant(effective),
    }
    if value is None:
        resource["dataAbsentReason"] = {"text": "Not recorded"}
    else:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return resource


def medication_request(
    rid: str,
    mrn: str,
    text: str,
    ndc: str,
    status: str,
    authored: datetime,
    route: str,
    timing: str,
    updated: datetime,
    source: str,
) -> dict[str, Any]:
    """An order whose drug is named by text (what every v2 grader matches on), coded by NDC."""
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "meta": meta(updated, source),
        "status": status,
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": f"{TERMINOLOGY}/medicationrequest-category", "code": "inpatient", "display": "Inpatient"}
                ],
                "text": "Inpatient",
            }
        ],
        "medicationCodeableConcept": {"coding": [{"system": NDC, "code": ndc, "display": text}], "text": text},
        "subject": subject(mrn),
        "authoredOn": timestamp(authored),
        "dosageInstruction": [{"timing": {"code": {"text": timing}}, "route": {"text": route}}],
    }


def service_request(
    rid: str, mrn: str, code: str, display: str, status: str, authored: datetime, updated: datetime, source: str
) -> dict[str, Any]:
    """A nursing or lab order (the catheter-removal order is filed under the insertion's code)."""
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "meta": meta(updated, source),
        "status": status,
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": CPT, "code": code, "display": display}], "text": display},
        "subject": subject(mrn),
        "authoredOn": timestamp(authored),
        "occurrenceDateTime": timestamp(authored),
    }
