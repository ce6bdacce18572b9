"""Write namespaces: attempts running side by side each see the base data plus their own POSTs
and none of another's (`X-Medbench-Namespace`), and one namespace can be dropped alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from medbench.fhir import FhirServer
from medbench.fhir.namespaces import NAMESPACE_HEADER

BP = {
    "resourceType": "Observation",
    "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs"}]}],
    "code": {"text": "BP"},
    "effectiveDateTime": "2023-11-13T10:15:00+00:00",
    "status": "final",
    "valueString": "118/77 mmHg",
    "subject": {"reference": "Patient/S0000002"},
}
VITALS = "Observation?patient=S0000002&category=vital-signs"


@pytest.fixture
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


def headers(namespace: str | None) -> dict[str, str]:
    return {} if namespace is None else {NAMESPACE_HEADER: namespace}


def post(
    server: FhirServer, namespace: str | None, body: dict[str, Any] = BP, resource_type: str = "Observation"
) -> dict[str, Any]:
    response = requests.post(server.base_url + resource_type, json=body, headers=headers(namespace), timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def ids(server: FhirServer, namespace: str | None, query: str = VITALS) -> list[str]:
    body = requests.get(server.base_url + query, headers=headers(namespace), timeout=10).json()
    return [entry["resource"]["id"] for entry in body.get("entry", [])]


def test_each_namespace_sees_its_own_writes_and_none_of_anothers(server: FhirServer) -> None:
    mine, theirs = post(server, "attempt-1")["id"], post(server, "attempt-2")["id"]
    assert ids(server, "attempt-1") == [mine]
    assert ids(server, "attempt-2") == [theirs]
    assert ids(server, None) == [], "the default namespace sees no namespaced write"
    assert (
        requests.get(server.base_url + f"Observation/{theirs}", headers=headers("attempt-1"), timeout=10).status_code
        == 404
    )


def test_every_namespace_sees_the_base_data(server: FhirServer) -> None:
    assert (
        ids(server, "attempt-1", "Patient?identifier=S0000001")
        == ids(server, None, "Patient?identifier=S0000001")
        == ["S0000001"]
    )


def test_a_request_without_the_header_uses_the_default_namespace(server: FhirServer) -> None:
    created = post(server, None)["id"]
    assert ids(server, None) == [created]
    assert ids(server, "attempt-1") == []


def test_created_ids_are_unique_across_namespaces(server: FhirServer) -> None:
    created = [post(server, f"ns{i % 3}")["id"] for i in range(9)]
    assert len(set(created)) == 9


@pytest.mark.parametrize("token", ["", "has space", "x" * 65, "slash/y", "ümlaut"])
def test_a_namespace_that_is_not_a_token_is_400(server: FhirServer, token: str) -> None:
    response = requests.get(server.base_url + VITALS, headers={NAMESPACE_HEADER: token.encode("utf-8")}, timeout=10)
    assert response.status_code == 400
    assert NAMESPACE_HEADER in response.json()["issue"][0]["diagnostics"]


def test_reset_writes_of_one_namespace_keeps_the_others(server: FhirServer) -> None:
    post(server, "a")
    kept = post(server, "b")["id"]
    default = post(server, None)["id"]
    server.reset_writes("a")
    assert (ids(server, "a"), ids(server, "b"), ids(server, None)) == ([], [kept], [default])
    server.reset_writes()
    assert (ids(server, "b"), ids(server, None)) == ([], [])


def test_http_delete_drops_one_namespace_on_the_real_url(server: FhirServer) -> None:
    post(server, "a")
    kept = post(server, "b")["id"]
    response = requests.delete(server.base_url + "$medbench-namespace", headers=headers("a"), timeout=10)
    assert response.status_code == 204 and response.content == b""
    assert (ids(server, "a"), ids(server, "b")) == ([], [kept])


def test_the_namespace_reset_is_not_reachable_through_the_display_host(server: FhirServer) -> None:
    """The gateway sends the model's requests with the display host (localhost:8080)."""
    kept = post(server, "a")["id"]
    response = requests.delete(
        server.base_url + "$medbench-namespace", headers={**headers("a"), "Host": "localhost:8080"}, timeout=10
    )
    assert response.status_code == 404
    assert ids(server, "a") == [kept]


def test_a_next_link_works_only_in_the_namespace_that_searched(server: FhirServer) -> None:
    first = requests.get(
        server.base_url + "Observation?patient=S0000001&_count=1", headers=headers("a"), timeout=10
    ).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert requests.get(next_url, headers=headers("a"), timeout=10).status_code == 200
    assert requests.get(next_url, headers=headers("b"), timeout=10).status_code == 410


def test_references_resolve_against_the_writes_of_the_same_namespace(server: FhirServer) -> None:
    patient = post(server, "a", {"resourceType": "Patient", "name": [{"family": "Doe"}]}, "Patient")["id"]
    observation = {**BP, "subject": {"reference": f"Patient/{patient}"}}
    assert (
        requests.post(server.base_url + "Observation", json=observation, headers=headers("a"), timeout=10).status_code
        == 201
    )
    refused = requests.post(server.base_url + "Observation", json=observation, headers=headers("b"), timeout=10)
    assert refused.status_code == 400 and "HAPI-1094" in refused.json()["issue"][0]["diagnostics"]


def test_concurrent_writers_and_readers_in_different_namespaces_stay_isolated(server: FhirServer) -> None:
    """Eight attempts in flight together: all POST at once (barrier), then all search at once
    while the others' writes exist, then half of them reset while the rest read."""
    attempts = [f"attempt-{i}" for i in range(8)]
    posted = threading.Barrier(len(attempts))
    reset_done = threading.Barrier(len(attempts))

    def attempt(namespace: str) -> tuple[list[str], list[str], list[str]]:
        with requests.Session() as session:
            session.headers.update(headers(namespace))
            created = [
                session.post(server.base_url + "Observation", json=BP, timeout=10).json()["id"] for _ in range(3)
            ]
            posted.wait(timeout=30)
            seen = [
                e["resource"]["id"] for e in session.get(server.base_url + VITALS, timeout=10).json().get("entry", [])
            ]
            if namespace.endswith(("0", "2", "4", "6")):
                assert session.delete(server.base_url + "$medbench-namespace", timeout=10).status_code == 204
            reset_done.wait(timeout=30)
            after = [
                e["resource"]["id"] for e in session.get(server.base_url + VITALS, timeout=10).json().get("entry", [])
            ]
        return created, seen, after

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        results = dict(zip(attempts, pool.map(attempt, attempts)))
    for namespace, (created, seen, after) in results.items():
        assert seen == created, namespace
        assert after == ([] if namespace.endswith(("0", "2", "4", "6")) else created), namespace
    assert ids(server, None) == []
