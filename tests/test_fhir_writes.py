"""POST create and the isolated writes layer: one task's writes never reach another task,
another server or the shared base database file."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from medbench.fhir import FhirServer

BP_POST = {
    "resourceType": "Observation",
    "category": [
        {
            "coding": [
                {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
            ]
        }
    ],
    "code": {"text": "BP"},
    "effectiveDateTime": "2023-11-13T10:15:00+00:00",
    "status": "final",
    "valueString": "118/77 mmHg",
    "subject": {"reference": "Patient/S0000002"},
}


@pytest.fixture
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


def post(server: FhirServer, resource_type: str, body: object, raw: bytes | None = None) -> requests.Response:
    url = server.base_url + resource_type
    headers = {"Host": "localhost:8080", "Content-Type": "application/fhir+json"}
    if raw is not None:
        return requests.post(url, data=raw, headers=headers, timeout=10)
    return requests.post(url, json=body, headers=headers, timeout=10)


def vitals_of_patient_2(server: FhirServer) -> list[dict]:
    body = requests.get(server.base_url + "Observation?patient=S0000002&category=vital-signs", timeout=10).json()
    return [entry["resource"] for entry in body.get("entry", [])]


def test_post_returns_201_with_location_id_and_meta(server: FhirServer) -> None:
    response = post(server, "Observation", BP_POST)
    assert response.status_code == 201
    created = response.json()
    assert created["id"].isdigit()
    assert response.headers["Location"] == f"http://localhost:8080/fhir/Observation/{created['id']}/_history/1"
    assert created["meta"]["versionId"] == "1"
    assert created["valueString"] == "118/77 mmHg"
    assert list(created)[:3] == ["resourceType", "id", "meta"]


def test_new_ids_do_not_collide_with_stored_ids(server: FhirServer) -> None:
    first = post(server, "Observation", BP_POST).json()["id"]
    second = post(server, "Observation", BP_POST).json()["id"]
    assert int(second) > int(first) > 1700


def test_posted_resource_is_searchable_and_readable(server: FhirServer) -> None:
    created = post(server, "Observation", BP_POST).json()
    assert [r["id"] for r in vitals_of_patient_2(server)] == [created["id"]]
    date_hit = requests.get(server.base_url + "Observation?patient=S0000002&date=2023-11-13", timeout=10).json()
    assert [e["resource"]["id"] for e in date_hit["entry"]] == [created["id"]]
    assert requests.get(server.base_url + f"Observation/{created['id']}", timeout=10).json()["id"] == created["id"]


def test_posted_resources_come_after_stored_ones_in_insertion_order(server: FhirServer) -> None:
    created = post(server, "Observation", {**BP_POST, "subject": {"reference": "Patient/S0000001"}}).json()
    body = requests.get(server.base_url + "Observation?patient=S0000001&category=vital-signs", timeout=10).json()
    assert [e["resource"]["id"] for e in body["entry"]] == ["1300", created["id"]]


def test_reset_writes_forgets_every_post(server: FhirServer) -> None:
    created = post(server, "Observation", BP_POST).json()
    server.reset_writes()
    assert vitals_of_patient_2(server) == []
    assert requests.get(server.base_url + f"Observation/{created['id']}", timeout=10).status_code == 404


def test_two_servers_on_one_file_do_not_share_writes(sample_db: Path) -> None:
    with FhirServer(sample_db) as first, FhirServer(sample_db) as second:
        post(first, "Observation", BP_POST)
        assert len(vitals_of_patient_2(first)) == 1
        assert vitals_of_patient_2(second) == []


def test_posts_never_modify_the_base_database_file(sample_db: Path) -> None:
    before = hashlib.sha256(sample_db.read_bytes()).hexdigest()
    with FhirServer(sample_db) as running:
        post(running, "Observation", BP_POST)
        post(
            running,
            "MedicationRequest",
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/S0000001"},
            },
        )
    assert hashlib.sha256(sample_db.read_bytes()).hexdigest() == before


def test_a_restarted_server_starts_without_earlier_writes(sample_db: Path) -> None:
    with FhirServer(sample_db) as running:
        post(running, "Observation", BP_POST)
    with FhirServer(sample_db) as running:
        assert vitals_of_patient_2(running) == []


def test_invalid_json_is_400_with_operation_outcome(server: FhirServer) -> None:
    response = post(server, "Observation", None, raw=b'{"resourceType": "Observation", ')
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Failed to parse request body as JSON resource" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "body", [{**BP_POST, "resourceType": "MedicationRequest"}, {"status": "final"}, ["not", "an", "object"]]
)
def test_wrong_or_missing_resource_type_is_400(server: FhirServer, body: object) -> None:
    response = post(server, "Observation", body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_post_to_an_unsupported_type_is_404(server: FhirServer) -> None:
    assert post(server, "Encounter", {"resourceType": "Encounter"}).status_code == 404


def test_other_methods_are_refused_without_a_500(server: FhirServer) -> None:
    response = requests.delete(server.base_url + "Observation/1001", timeout=10)
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_post_with_a_broken_content_length_is_400(server: FhirServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /fhir/Observation HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n{}")
        assert sock.makefile("rb").readline() == b"HTTP/1.1 400 \r\n"
