"""Everything the server returns is valid FHIR (R4B models of fhir.resources), for the sample
EHR and for the real synthetic population, and a standard FHIR client can search it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fhir.resources.R4B import get_fhir_model_class
from fhirclient import client as fhirclient
from fhirclient.models.observation import Observation as ClientObservation
from fhirclient.models.patient import Patient as ClientPatient

from medbench.environment.provision import embedded_server
from medbench.fhir import FhirServer
from medbench.fhir.searchparams import REGISTRY


@pytest.fixture(scope="module")
def sample_server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


@pytest.fixture(scope="module")
def population_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with embedded_server(seed=0, scale="small", cache_dir=tmp_path_factory.mktemp("cache")) as running:
        yield running


def validate(body: dict) -> None:
    """Raise if `body` (and every entry's resource) is not a valid R4B resource."""
    get_fhir_model_class(body["resourceType"]).model_validate(body)


def all_of_type(server: FhirServer, resource_type: str) -> dict:
    response = requests.get(server.base_url + f"{resource_type}?_count=5000&_format=json", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("resource_type", list(REGISTRY))
def test_every_sample_resource_and_bundle_validates(sample_server: FhirServer, resource_type: str) -> None:
    bundle = all_of_type(sample_server, resource_type)
    assert bundle.get("entry"), f"sample has no {resource_type}"
    validate(bundle)


@pytest.mark.parametrize("resource_type", list(REGISTRY))
def test_every_population_resource_returned_validates(population_server: FhirServer, resource_type: str) -> None:
    bundle = all_of_type(population_server, resource_type)
    validate(bundle)
    for entry in bundle.get("entry", []):
        validate(entry["resource"])


def test_population_has_the_resource_types_agents_query(population_server: FhirServer) -> None:
    for resource_type in ("Patient", "Observation", "Condition", "MedicationRequest", "Procedure"):
        assert all_of_type(population_server, resource_type).get("entry"), resource_type


def test_metadata_paging_pages_and_errors_validate(sample_server: FhirServer) -> None:
    validate(requests.get(sample_server.base_url + "metadata", timeout=10).json())
    first = requests.get(sample_server.base_url + "Observation?patient=S0000001&code=K", timeout=10).json()
    validate(first)
    validate(requests.get(first["link"][1]["url"], timeout=10).json())
    validate(requests.get(sample_server.base_url + "Observation?foo=1", timeout=10).json())


def test_posted_resource_answer_validates(sample_server: FhirServer) -> None:
    posted = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "priority": "stat",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "306181000000106"}]},
        "subject": {"reference": "Patient/S0000001"},
        "authoredOn": "2023-11-13T10:15:00+00:00",
    }
    created = requests.post(sample_server.base_url + "ServiceRequest", json=posted, timeout=10).json()
    sample_server.reset_writes()
    validate(created)


def test_fhirclient_can_search_and_page_the_server(sample_server: FhirServer) -> None:
    smart = fhirclient.FHIRClient(settings={"app_id": "medbench-test", "api_base": sample_server.base_url})
    patients = list(
        ClientPatient.where(struct={"family": "watkins", "birthdate": "1996-10-10"}).perform_resources_iter(
            smart.server
        )
    )
    assert [p.id for p in patients] == ["S0000001"]
    assert patients[0].name[0].given == ["Lisa"]
    labs = list(
        ClientObservation.where(struct={"patient": "S0000001", "code": "K"}).perform_resources_iter(smart.server)
    )
    assert len(labs) == 25
    assert {lab.valueQuantity.unit for lab in labs} == {"mmol/L"}


def test_embedded_server_reuses_the_cached_database(population_server: FhirServer) -> None:
    cache = population_server.db_path.parent.parent
    assert embedded_server(seed=0, scale="small", cache_dir=cache).db_path == population_server.db_path
