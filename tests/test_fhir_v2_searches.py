"""The searches MedAgentBench v2's graders and tools send, answered by the embedded server over the
v2 EHR as they rely on: comma-separated codes as OR, status filters, `_count=5000` in one bundle,
`application/fhir+json`, seeded meta kept, writes stamped with the time of writing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from medbench.ehr.v2.branches import CUTOFF
from medbench.ehr.v2.population import v2_population
from medbench.environment.provision import embedded_v2_server
from medbench.fhir.namespaces import NAMESPACE_HEADER


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with embedded_v2_server(0, "small", None, tmp_path_factory.mktemp("cache")) as server:
        yield server.base_url


def get(base: str, query: str, **headers: str) -> dict[str, Any]:
    response = requests.get(base + query, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    bundle: dict[str, Any] = response.json()
    return bundle


def ids(bundle: dict[str, Any]) -> set[str]:
    return {entry["resource"]["id"] for entry in bundle.get("entry", [])}


def patient_with(base: str, query: str) -> str:
    """A v2 patient whose chart has at least one match for `query`."""
    bundle = get(base, f"{query}&_count=5000&_format=json")
    return str(bundle["entry"][0]["resource"]["subject"]["reference"]).removeprefix("Patient/")


def test_comma_separated_codes_are_an_or(base: str) -> None:
    mrn = patient_with(base, "Procedure?code=IMGCT0491")
    either = ids(get(base, f"Procedure?patient={mrn}&code=IMGCT0491,IMGIL0001,74177&_count=5000&_format=json"))
    one_by_one = set().union(
        *(
            ids(get(base, f"Procedure?patient={mrn}&code={c}&_count=5000&_format=json"))
            for c in ("IMGCT0491", "IMGIL0001", "74177")
        )
    )
    assert either == one_by_one and either


def test_status_filters_keep_only_that_status(base: str) -> None:
    mrn = patient_with(base, "MedicationRequest?status=stopped")
    everything = get(base, f"MedicationRequest?patient={mrn}&_count=5000&_format=json")["entry"]
    for status in ("active", "completed", "stopped"):
        found = get(base, f"MedicationRequest?patient={mrn}&status={status}&_count=5000&_format=json").get("entry", [])
        assert ids({"entry": found}) == {e["resource"]["id"] for e in everything if e["resource"]["status"] == status}
    catheter = patient_with(base, "ServiceRequest?code=NUR1373")
    assert (
        get(base, f"ServiceRequest?patient={catheter}&code=NUR1373&status=active&_count=5000&_format=json")["total"]
        == 0
    )


def test_count_5000_answers_every_match_in_one_bundle(base: str) -> None:
    paged = get(base, "Observation?code=HEARTRATE&_format=json")
    assert [link["relation"] for link in paged["link"]] == ["self", "next"] and len(paged["entry"]) == 20
    whole = get(base, "Observation?code=HEARTRATE&_count=5000&_format=json")
    assert [link["relation"] for link in whole["link"]] == ["self"]
    assert whole["total"] == len(whole["entry"]) > 200


def test_the_procedure_tool_query_answers_json_without_format_newest_first(base: str) -> None:
    mrn = patient_with(base, "Procedure?code=COVIDVACCINE")
    bundle = get(base, f"Procedure?code=COVIDVACCINE,90686&date=ge1900-01-01&patient={mrn}&_sort=-date&_count=200")
    dates = [entry["resource"]["performedDateTime"] for entry in bundle["entry"]]
    assert dates == sorted(dates, reverse=True)


def test_seeded_resources_keep_their_stored_meta(base: str) -> None:
    stored = next(
        r for r in v2_population(0, "small").iter_resources() if r["id"].isdigit() and int(r["id"]) >= 9_000_000
    )
    served = requests.get(f"{base}{stored['resourceType']}/{stored['id']}", timeout=30).json()
    assert served["meta"] == stored["meta"]
    assert datetime.fromisoformat(served["meta"]["lastUpdated"]) <= CUTOFF


def test_a_write_is_stamped_with_the_time_of_writing_and_found_past_the_cutoff(base: str) -> None:
    mrn = patient_with(base, "Procedure?code=NUR1373")
    order = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "NUR1373", "display": "Remove catheter"}]
        },
        "subject": {"reference": f"Patient/{mrn}"},
        "authoredOn": "2023-11-11T09:00:00+00:00",
    }
    before = datetime.now().astimezone()
    created = requests.post(f"{base}ServiceRequest", json=order, headers={NAMESPACE_HEADER: "v2-write"}, timeout=30)
    assert created.status_code == 201
    assert datetime.fromisoformat(created.json()["meta"]["lastUpdated"]) >= before.replace(microsecond=0)
    fresh = get(
        base,
        f"ServiceRequest?patient={mrn}&_lastUpdated=gt2025-01-01T00:00:00%2B00:00&_count=5000&_format=json",
        **{NAMESPACE_HEADER: "v2-write"},
    )
    assert ids(fresh) == {created.json()["id"]}
    elsewhere = get(
        base, f"ServiceRequest?patient={mrn}&_lastUpdated=gt2025-01-01T00:00:00%2B00:00&_count=5000&_format=json"
    )
    assert elsewhere["total"] == 0
