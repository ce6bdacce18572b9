"""`_lastUpdated`, the search parameter HAPI supports on every type, on base data and on writes.

The state grader finds what an attempt created with `_lastUpdated=gt<clinical now>` in the
attempt's namespace; that is exact only because the seeded EHR was last updated at or before
the clinical now, and the server skips the base scan only when no base value can match.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from medbench.ehr.cache import ensure_database
from medbench.fhir import FhirServer
from medbench.fhir.namespaces import NAMESPACE_HEADER
from medbench.fhir.searchparams import REGISTRY

SAMPLE_UPDATED = "2024-12-30T21:48:31.412+00:00"  # every resource of tests/helpers/fhir_sample.py
ORDER = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/S0000001"},
}


@pytest.fixture
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


def total(server: FhirServer, query: str, namespace: str | None = None) -> int:
    headers = {NAMESPACE_HEADER: namespace} if namespace else {}
    response = requests.get(f"{server.base_url}{query}&_total=accurate", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def test_every_type_advertises_and_accepts_last_updated(server: FhirServer) -> None:
    statement = requests.get(server.base_url + "metadata", timeout=10).json()
    for resource in statement["rest"][0]["resource"]:
        assert "_lastUpdated" in {p["name"] for p in resource["searchParam"]}, resource["type"]
    for resource_type in REGISTRY:
        assert total(server, f"{resource_type}?_lastUpdated=le2024-12-31") == total(server, f"{resource_type}?_count=0")


def test_base_data_matches_by_its_own_last_updated_at_the_boundary(server: FhirServer) -> None:
    everything = total(server, "Observation?_count=5000")
    assert everything > 0
    assert total(server, "Observation?_lastUpdated=ge2024-12-30T21:48:31.412Z") == everything
    assert total(server, "Observation?_lastUpdated=2024-12-30") == everything
    assert total(server, "Observation?_lastUpdated=gt2024-12-30T21:48:31.412Z") == 0
    assert total(server, "Observation?_lastUpdated=lt2024-12-30") == 0


def test_last_updated_after_the_base_finds_exactly_one_namespaces_writes(server: FhirServer) -> None:
    headers = {NAMESPACE_HEADER: "mine", "Content-Type": "application/fhir+json"}
    created = requests.post(server.base_url + "ServiceRequest", json=ORDER, headers=headers, timeout=10).json()
    query = "ServiceRequest?_lastUpdated=gt2024-12-31T00:00:00Z"
    body = requests.get(server.base_url + query, headers={NAMESPACE_HEADER: "mine"}, timeout=10).json()
    assert [entry["resource"]["id"] for entry in body["entry"]] == [created["id"]]
    assert total(server, query, "someone-else") == 0 and total(server, query) == 0
    today = created["meta"]["lastUpdated"][:10]
    assert total(server, f"ServiceRequest?patient=S0000001&_lastUpdated=ge{today}", "mine") == 1


def test_the_seeded_ehr_was_last_updated_at_or_before_the_clinical_now() -> None:
    """What makes `_lastUpdated=gt<now>` mean "created by the attempt" on the embedded EHR."""
    with FhirServer(ensure_database(0, "small")) as server:
        for resource_type in REGISTRY:
            assert total(server, f"{resource_type}?_lastUpdated=gt2023-11-13T10:15:00Z") == 0, resource_type
            assert total(server, f"{resource_type}?_lastUpdated=le2023-11-13T10:15:00Z") == total(
                server, f"{resource_type}?_count=0"
            ), resource_type
