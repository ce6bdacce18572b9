"""FHIR R4 resource dicts in the shapes of the upstream MedAgentBench data (FHIR_SERVER.md).

Pure builders: given values, return fresh JSON-ready dicts (no shared sub-objects, so a
consumer may mutate one) with `id` and `meta` first, as HAPI writes them."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from medbench.ehr.catalog import Measure
from medbench.ehr.demographics import Demographics

TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
V2_0203 = f"{TERMINOLOGY}/v2-0203"
OBSERVATION_CATEGORY = f"{TERMINOLOGY}/observation-category"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
NDC = "http://hl7.org/fhir/sid/ndc"
CPT = "http://www.ama-assn.org/go/cpt"


@lru_cache(maxsize=8192)
def timestamp(moment: datetime) -> str:
    """Clinical times as the upstream data writes them: `2023-11-09T12:23:00+00:00`.
    Cached: a panel's or a vital-sign set's resources share one moment, and formatting dominates."""
    return moment.isoformat()


@lru_cache(maxsize=8192)
def instant(moment: datetime) -> str:
    """HAPI's instants (meta.lastUpdated, issued): `2023-11-09T12:23:00.000+00:00`."""
    return moment.isoformat(timespec="milliseconds")


def meta(last_updated: datetime, source: str) -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": instant(last_updated), "source": source}


def subject(mrn: str) -> dict[str, Any]:
    return {"reference": f"Patient/{mrn}", "identifier": {"system": V2_0203, "value": mrn}}


def patient(demo: Demographics, last_updated: datetime, source: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": demo.mrn,
        "meta": meta(last_updated, source),
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "valueCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/v3/Race", **demo.race}],
                    "text": demo.race["display"],
                },
            },
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
                "valueCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/v3/Ethnicity", **demo.ethnicity}],
                    "text": demo.ethnicity["display"],
                },
            },
        ],
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical Record Number"}]},
                "value": demo.mrn,
            }
        ],
        "name": [{"use": "official", "family": demo.family, "given": list(demo.given)}],
        "telecom": [{"system": "phone", "value": demo.phone, "use": "home"}],
        "gender": demo.gender,
        "birthDate": demo.birth_date.isoformat(),
        "address": [
            {"line": [demo.address_line], "city": demo.city, "state": demo.state, "postalCode": demo.postal_code}
        ],
    }


def _coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def lab(
    rid: int, mrn: str, measure: Measure, effective: datetime, issued: datetime, value: float, source: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": str(rid),
        "meta": meta(issued, source),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": measure.code, "display": measure.code}], "text": measure.code},
        "subject": subject(mrn),
        "effectiveDateTime": timestamp(effective),
        "issued": instant(issued),
        "valueQuantity": {"value": value, "unit": measure.unit, "system": UCUM, "code": measure.unit},
    }


def vital(
    rid: int, mrn: str, code: str, effective: datetime, value: float | str, unit: str | None, source: str
) -> dict[str, Any]:
    """A flowsheet row; blood pressure carries a string like "118/77 mmHg", the rest a quantity."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(rid),
        "meta": meta(effective, source),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": code}], "text": code},
        "subject": subject(mrn),
        "effectiveDateTime": timestamp(effective),
        "issued": instant(effective),
    }
    if isinstance(value, str):
        resource["valueString"] = value
    else:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return resource


def condition(rid: int, mrn: str, entry: dict[str, Any], onset: datetime, active: bool, source: str) -> dict[str, Any]:
    status = "active" if active else "resolved"
    return {
        "resourceType": "Condition",
        "id": str(rid),
        "meta": meta(onset, source),
        "clinicalStatus": {
            "coding": [{"system": f"{TERMINOLOGY}/condition-clinical", "code": status, "display": status.capitalize()}]
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
        "code": {
            "coding": [
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": entry["icd10"], "display": entry["display"]},
                {"system": "http://snomed.info/sct", "code": entry["snomed"], "display": entry["display"]},
            ],
            "text": entry["display"],
        },
        "subject": subject(mrn),
        "onsetDateTime": timestamp(onset),
        "recordedDate": timestamp(onset),
    }


def medication_request(
    rid: int,
    mrn: str,
    entry: dict[str, Any],
    authored: datetime,
    until: datetime,
    setting: str,
    active: bool,
    source: str,
) -> dict[str, Any]:
    """An order; `setting` is the Epic-style category (Inpatient / Outpatient) agents may search by."""
    return {
        "resourceType": "MedicationRequest",
        "id": str(rid),
        "meta": meta(authored, source),
        "status": "active" if active else "completed",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": f"{TERMINOLOGY}/medicationrequest-category", "code": setting.lower(), "display": setting}
                ],
                "text": setting,
            }
        ],
        "medicationCodeableConcept": _coded(NDC, entry["ndc"], entry["display"]),
        "subject": subject(mrn),
        "authoredOn": timestamp(authored),
        "dosageInstruction": [
            {
                "route": {"text": entry["route"]},
                "timing": {"repeat": {"boundsPeriod": {"start": timestamp(authored), "end": timestamp(until)}}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": entry["dose"],
                            "unit": entry["dose_unit"],
                            "system": UCUM,
                            "code": entry["dose_unit"],
                        }
                    }
                ],
            }
        ],
    }


def procedure(rid: int, mrn: str, entry: dict[str, Any], performed: datetime, source: str) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": str(rid),
        "meta": meta(performed, source),
        "status": "completed",
        "code": _coded(CPT, entry["cpt"], entry["display"]),
        "subject": subject(mrn),
        "performedDateTime": timestamp(performed),
    }
