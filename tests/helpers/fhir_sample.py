"""A small hand-made EHR in the shapes of the real MedAgentBench data, for the FHIR server tests.

Known facts the tests rely on:
- S0000001 Lisa Watkins (1996-10-10, female); S0000002 José Núñez (1950-02-03, male);
  S0000003 Lisa-Marie Watkinson (1980-05-05, female), no clinical data.
- S0000001 magnesium (MG) values, in insertion order: 2023-11-12T20:00 -> 1.8,
  2022-06-01T08:00 -> 2.1, 2023-11-13T06:00 -> 1.4 (not sorted by date on purpose).
- S0000001 has 25 potassium (K) labs, one a day from 2023-10-01T07:00 (value 3.0 + day/100).
- S0000001 has one BP vital 2023-11-12T10:30 "118/77 mmHg"; S0000002 one K lab 2023-11-01.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

LAB = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "laboratory",
    "display": "Laboratory",
}
VITAL = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "vital-signs",
    "display": "Vital Signs",
}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _meta() -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": "2024-12-30T21:48:31.412+00:00", "source": "#Ka3dJ0xT9qLm2PzW"}


def _subject(mrn: str) -> dict[str, Any]:
    return {"reference": f"Patient/{mrn}", "identifier": {"system": V2_0203, "value": mrn}}


def patient(mrn: str, given: list[str], family: str, birth: str, gender: str, city: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": mrn,
        "meta": _meta(),
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "valueCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/v3/Race", "code": "2106-3", "display": "White"}]
                },
            }
        ],
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical Record Number"}]},
                "value": mrn,
            }
        ],
        "name": [{"use": "official", "family": family, "given": given}],
        "telecom": [{"system": "phone", "value": "555-201-3344", "use": "home"}],
        "gender": gender,
        "birthDate": birth,
        "address": [{"line": ["12 Main St"], "city": city, "state": "CA", "postalCode": "94305"}],
    }


def lab(rid: int, mrn: str, code: str, when: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": str(rid),
        "meta": _meta(),
        "status": "final",
        "category": [{"coding": [LAB]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": code}], "text": code},
        "subject": _subject(mrn),
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def sample_resources() -> list[dict[str, Any]]:
    """Every resource of the sample EHR, in storage order (Patients first)."""
    resources = [
        patient("S0000001", ["Lisa"], "Watkins", "1996-10-10", "female", "Palo Alto"),
        patient("S0000002", ["José"], "Núñez", "1950-02-03", "male", "Gilroy"),
        patient("S0000003", ["Lisa-Marie"], "Watkinson", "1980-05-05", "female", "San José"),
        lab(1001, "S0000001", "MG", "2023-11-12T20:00:00+00:00", 1.8, "mg/dL"),
        lab(1002, "S0000001", "MG", "2022-06-01T08:00:00+00:00", 2.1, "mg/dL"),
        lab(1003, "S0000001", "MG", "2023-11-13T06:00:00+00:00", 1.4, "mg/dL"),
    ]
    start = datetime(2023, 10, 1, 7, 0, tzinfo=timezone.utc)
    for day in range(25):
        when = (start + timedelta(days=day)).isoformat()
        resources.append(lab(1100 + day, "S0000001", "K", when, round(3.0 + day / 100, 2), "mmol/L"))
    resources += [
        lab(1200, "S0000002", "K", "2023-11-01T09:00:00+00:00", 4.2, "mmol/L"),
        {
            "resourceType": "Observation",
            "id": "1300",
            "meta": _meta(),
            "status": "final",
            "category": [{"coding": [VITAL]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "BP", "display": "BP"}], "text": "BP"},
            "subject": _subject("S0000001"),
            "effectiveDateTime": "2023-11-12T10:30:00+00:00",
            "valueString": "118/77 mmHg",
        },
        {
            "resourceType": "Condition",
            "id": "1400",
            "meta": _meta(),
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "problem-list-item",
                            "display": "Problem List Item",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": "E11.9",
                        "display": "Type 2 diabetes mellitus",
                    }
                ]
            },
            "subject": _subject("S0000001"),
            "onsetDateTime": "2019-03-04T00:00:00+00:00",
            "recordedDate": "2019-03-04T00:00:00+00:00",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "1500",
            "meta": _meta(),
            "status": "active",
            "intent": "order",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                            "code": "inpatient",
                            "display": "Inpatient",
                        }
                    ]
                }
            ],
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "http://hl7.org/fhir/sid/ndc", "code": "0338-1715-40", "display": "Magnesium sulfate"}
                ]
            },
            "subject": _subject("S0000001"),
            "authoredOn": "2023-11-12T21:00:00+00:00",
            "dosageInstruction": [
                {
                    "timing": {"event": ["2023-11-12T22:00:00+00:00"]},
                    "route": {"text": "IV"},
                    "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "g"}}],
                }
            ],
        },
        {
            "resourceType": "Procedure",
            "id": "1600",
            "meta": _meta(),
            "status": "completed",
            "code": {
                "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99214", "display": "Office visit"}]
            },
            "subject": _subject("S0000001"),
            "performedDateTime": "2023-05-05T14:00:00+00:00",
        },
        {
            "resourceType": "ServiceRequest",
            "id": "1700",
            "meta": _meta(),
            "status": "completed",
            "intent": "order",
            "priority": "routine",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
            "subject": _subject("S0000001"),
            "authoredOn": "2023-01-02T09:00:00+00:00",
        },
    ]
    return resources
