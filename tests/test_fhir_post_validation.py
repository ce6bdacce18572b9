"""POST bodies are parsed as the FHIR R4 resource type of the URL, as HAPI parses them: every
invalid class gets its 4xx with an OperationOutcome naming the problem and is not stored; valid
bodies come back from later searches as HAPI stores them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from medbench.fhir import FhirServer

MAGNESIUM_ORDER = {
    "resourceType": "MedicationRequest",
    "medicationCodeableConcept": {
        "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0338-1715-40", "display": "Magnesium"}]
    },
    "authoredOn": "2023-11-13T10:15:00+00:00",
    "dosageInstruction": [
        {
            "route": "IV",
            "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "g"}, "rateQuantity": {"value": 2, "unit": "h"}}],
        }
    ],
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/S0000001"},
}
REFERRAL = {
    "resourceType": "ServiceRequest",
    "code": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "306181000000106", "display": "Orthopedic surgery referral"}
        ]
    },
    "authoredOn": "2023-11-13T10:15:00+00:00",
    "status": "active",
    "intent": "order",
    "priority": "stat",
    "subject": {"reference": "Patient/S0000001"},
    "note": {"text": "Situation: acute left knee injury."},
}
BP = {
    "resourceType": "Observation",
    "subject": {"reference": "Patient/S0000002"},
    "valueString": "118/77 mmHg",
    "status": "final",
    "effectiveDateTime": "2023-11-13T10:15:00+00:00",
    "code": {"text": "BP"},
    "category": [
        {
            "coding": [
                {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
            ]
        }
    ],
}


@pytest.fixture(scope="module")
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_writes(server: FhirServer) -> Iterator[None]:
    server.reset_writes()
    yield
    server.reset_writes()


def post(server: FhirServer, resource_type: str, body: Any) -> requests.Response:
    return requests.post(server.base_url + resource_type, json=body, headers={"Host": "localhost:8080"}, timeout=10)


def diagnostics(response: requests.Response) -> str:
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome["issue"][0]["diagnostics"]


def test_valid_observation_is_stored_in_hapis_element_order_with_its_values_as_sent(server: FhirServer) -> None:
    response = post(server, "Observation", BP)
    assert response.status_code == 201
    created = response.json()
    assert list(created) == [
        "resourceType",
        "id",
        "meta",
        "status",
        "category",
        "code",
        "subject",
        "effectiveDateTime",
        "valueString",
    ]
    assert created["effectiveDateTime"] == "2023-11-13T10:15:00+00:00", "HAPI keeps the date as written"
    assert response.headers["Location"] == f"http://localhost:8080/fhir/Observation/{created['id']}/_history/1"
    assert created["meta"]["versionId"] == "1" and created["meta"]["lastUpdated"]
    found = requests.get(server.base_url + "Observation?patient=S0000002&category=vital-signs", timeout=10).json()
    assert [entry["resource"] for entry in found["entry"]] == [created]


def test_official_magnesium_order_with_a_plain_string_route_is_accepted_as_route_text(server: FhirServer) -> None:
    response = post(server, "MedicationRequest", MAGNESIUM_ORDER)
    assert response.status_code == 201, response.text
    assert response.json()["dosageInstruction"][0]["route"] == {"text": "IV"}


def test_official_referral_with_a_single_note_object_is_stored_as_a_one_item_list(server: FhirServer) -> None:
    response = post(server, "ServiceRequest", REFERRAL)
    assert response.status_code == 201, response.text
    assert response.json()["note"] == [{"text": "Situation: acute left knee injury."}]


def test_observation_status_is_checked_against_the_whole_r4_value_set(server: FhirServer) -> None:
    """The R4B model lists Observation.status as `registered, preliminary, final, amended, +`;
    the "+" stands for the rest of the required value set (corrected, cancelled, ...)."""
    assert post(server, "Observation", {**BP, "status": "corrected"}).status_code == 201
    assert post(server, "Observation", {**BP, "status": "done"}).status_code == 400


def test_client_id_is_ignored_and_client_meta_tags_are_kept(server: FhirServer) -> None:
    body = {**BP, "id": "mine", "meta": {"versionId": "7", "tag": [{"system": "urn:x", "code": "t"}]}}
    created = post(server, "Observation", body).json()
    assert created["id"] != "mine" and created["meta"]["versionId"] == "1"
    assert created["meta"]["tag"] == [{"system": "urn:x", "code": "t"}]


INVALID = [
    pytest.param(
        "Observation",
        {**BP, "resourceType": "MedicationRequest"},
        400,
        'expected "Observation" but found "MedicationRequest"',
        id="resource-type-mismatch",
    ),
    pytest.param(
        "Observation",
        {k: v for k, v in BP.items() if k != "resourceType"},
        400,
        "missing required element: 'resourceType'",
        id="no-resource-type",
    ),
    pytest.param(
        "Encounter",
        {"resourceType": "Encounter", "status": "planned"},
        404,
        "Unknown resource type 'Encounter'",
        id="unsupported-type",
    ),
    pytest.param(
        "Medication", {"resourceType": "Medication"}, 404, "Unknown resource type 'Medication'", id="type-not-served"
    ),
    pytest.param(
        "Observation",
        {**BP, "subject": True},
        400,
        "Found incorrect type for element subject - Expected OBJECT and found SCALAR (BOOLEAN)",
        id="subject-true",
    ),
    pytest.param(
        "Observation",
        {**BP, "subject": "Patient/S0000002"},
        400,
        "incorrect type for element subject",
        id="reference-as-string",
    ),
    pytest.param(
        "Observation",
        {**BP, "status": 1},
        400,
        "Expected SCALAR (STRING) and found SCALAR (NUMBER)",
        id="number-for-code",
    ),
    pytest.param(
        "MedicationRequest",
        {**MAGNESIUM_ORDER, "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": "2", "unit": "g"}}]}]},
        400,
        "element value - Expected SCALAR (NUMBER)",
        id="string-for-decimal",
    ),
    pytest.param(
        "Observation",
        {**BP, "code": [{"text": "BP"}, {"text": "BP2"}]},
        400,
        "Multiple repetitions of non-repeatable element 'code'",
        id="array-for-single",
    ),
    pytest.param("Observation", {**BP, "valueString": None}, 400, "found NULL", id="null"),
    pytest.param(
        "Observation",
        {**BP, "effectiveDateTime": "yesterday"},
        400,
        'Invalid attribute value "yesterday"',
        id="bad-date",
    ),
    pytest.param(
        "Observation",
        {**BP, "effectiveDateTime": "2023-02-30"},
        400,
        'Invalid attribute value "2023-02-30"',
        id="impossible-date",
    ),
    pytest.param(
        "MedicationRequest",
        {**MAGNESIUM_ORDER, "status": "done"},
        400,
        "Invalid attribute value \"done\": Unknown code 'done'",
        id="code-outside-required-binding",
    ),
    pytest.param("Observation", {**BP, "colour": "red"}, 400, "Unknown element 'colour'", id="unknown-element"),
    pytest.param(
        "Observation",
        {k: v for k, v in BP.items() if k != "code"},
        422,
        "Observation.code: minimum required = 1",
        id="required-missing",
    ),
    pytest.param("Observation", {**BP, "valueQuantity": {"value": 1}}, 422, "valueString", id="two-choice-values"),
    pytest.param(
        "Observation",
        {**BP, "subject": {"reference": "S0000002"}},
        400,
        "HAPI-0505: Invalid resource reference found at path[Observation.subject] - Does not contain resource type",
        id="reference-without-type",
    ),
    pytest.param(
        "Observation",
        {**BP, "subject": {"reference": "Patient/S9999999"}},
        400,
        "HAPI-1094: Resource Patient/S9999999 not found, specified in path: Observation.subject",
        id="reference-to-nothing",
    ),
    pytest.param(
        "Observation",
        {**BP, "subject": {"reference": "Widget/1"}},
        400,
        "Resource type is unknown",
        id="reference-to-unknown-type",
    ),
    pytest.param(
        "Observation",
        {**BP, "subject": {"reference": "Encounter/1"}},
        400,
        "Resource type 'Encounter' is not valid for this path",
        id="reference-of-wrong-type",
    ),
    pytest.param(
        "Observation",
        {**BP, "subject": {"reference": "http://elsewhere.example/fhir/Patient/1"}},
        400,
        "HAPI-0507: Resource contains external reference",
        id="external-reference",
    ),
    pytest.param("Observation", [BP], 400, "not a JSON object", id="array-body"),
]


@pytest.mark.parametrize(("resource_type", "body", "status", "fragment"), INVALID)
def test_each_invalid_body_class_gets_its_4xx_and_is_not_stored(
    server: FhirServer, resource_type: str, body: Any, status: int, fragment: str
) -> None:
    response = post(server, resource_type, body)
    assert response.status_code == status, response.text
    assert fragment in diagnostics(response)
    assert response.headers["Content-Type"] == "application/fhir+json;charset=UTF-8"
    assert server.store.count_writes() == 0


def test_a_reference_to_a_resource_posted_earlier_in_the_same_namespace_resolves(server: FhirServer) -> None:
    patient = requests.post(
        server.base_url + "Patient", json={"resourceType": "Patient", "name": [{"family": "New"}]}, timeout=10
    ).json()
    response = post(server, "Observation", {**BP, "subject": {"reference": f"Patient/{patient['id']}"}})
    assert response.status_code == 201, response.text
