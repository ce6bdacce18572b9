"""Response text and HTTP framing exactly as the upstream HAPI server sends them: the model
reads these bodies verbatim, and the harness shows the status line of errors."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from medbench.fhir import FhirServer, bundle
from medbench.fhir.bundle import escape_param, render
from medbench.fhir.searchparams import REGISTRY

HAPI_STYLE_PATIENT_BUNDLE = """{
  "resourceType": "Bundle",
  "id": "<uuid>",
  "meta": {
    "lastUpdated": "<now>"
  },
  "type": "searchset",
  "total": 1,
  "link": [ {
    "relation": "self",
    "url": "http://localhost:8080/fhir/Patient?_format=json&birthdate=1996-10-10&family=Watkins&given=Lisa"
  } ],
  "entry": [ {
    "fullUrl": "http://localhost:8080/fhir/Patient/S0000001",
    "resource": {
      "resourceType": "Patient",
      "id": "S0000001",
      "meta": {
        "versionId": "1",
        "lastUpdated": "2024-12-30T21:48:31.412+00:00",
        "source": "#Ka3dJ0xT9qLm2PzW"
      },
      "extension": [ {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "valueCodeableConcept": {
          "coding": [ {
            "system": "http://hl7.org/fhir/v3/Race",
            "code": "2106-3",
            "display": "White"
          } ]
        }
      } ],
      "identifier": [ {
        "use": "usual",
        "type": {
          "coding": [ {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical Record Number"
          } ]
        },
        "value": "S0000001"
      } ],
      "name": [ {
        "use": "official",
        "family": "Watkins",
        "given": [ "Lisa" ]
      } ],
      "telecom": [ {
        "system": "phone",
        "value": "555-201-3344",
        "use": "home"
      } ],
      "gender": "female",
      "birthDate": "1996-10-10",
      "address": [ {
        "line": [ "12 Main St" ],
        "city": "Palo Alto",
        "state": "CA",
        "postalCode": "94305"
      } ]
    },
    "search": {
      "mode": "match"
    }
  } ]
}"""


@pytest.fixture(scope="module")
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


def as_upstream(server: FhirServer, url: str) -> requests.Response:
    """GET the way the agent gateway does: real port, but Host says localhost:8080."""
    return requests.get(server.base_url + url, headers={"Host": "localhost:8080"}, timeout=10)


def raw_status_line(server: FhirServer, path: str) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n".encode())
        return sock.makefile("rb").readline()


def masked(text: str) -> str:
    text = re.sub(r'"id": "[0-9a-f-]{36}"', '"id": "<uuid>"', text, count=1)
    return re.sub(r'("meta": \{\n    "lastUpdated": )"[^"]+"', r'\1"<now>"', text, count=1)


def test_searchset_text_matches_hapi_layout_exactly(server: FhirServer) -> None:
    response = as_upstream(server, "Patient?given=Lisa&family=Watkins&birthdate=1996-10-10&_format=json")
    assert masked(response.text) == HAPI_STYLE_PATIENT_BUNDLE


def test_content_type_is_fhir_json_utf8(server: FhirServer) -> None:
    response = as_upstream(server, "Patient?identifier=S0000001")
    assert response.headers["Content-Type"] == "application/fhir+json;charset=UTF-8"


@pytest.mark.parametrize(
    "path",
    ["/fhir/Observation?date=2023-11-12,2023-11-13", "/fhir/Patient&_format=json", "/fhir/Patient?identifier=S0000001"],
)
def test_status_lines_carry_no_reason_phrase(server: FhirServer, path: str) -> None:
    assert re.fullmatch(rb"HTTP/1\.1 \d{3} \r\n", raw_status_line(server, path))


def test_requests_error_text_has_the_empty_reason_the_harness_shows(server: FhirServer) -> None:
    response = as_upstream(server, "Observation?patient=S0000001&date=2023-11-12,2023-11-13")
    with pytest.raises(requests.HTTPError) as error:
        response.raise_for_status()
    assert str(error.value).startswith("400 Client Error:  for url: ")


def test_self_link_sorts_params_and_escapes_values_like_hapi(server: FhirServer) -> None:
    response = as_upstream(server, "Observation?patient=Patient/S0000001&code=http://loinc.org|K&_count=5&_format=json")
    self_url = response.json()["link"][0]["url"]
    assert self_url == (
        "http://localhost:8080/fhir/Observation?_count=5&_format=json"
        "&code=http%3A%2F%2Floinc.org%7CK&patient=Patient%2FS0000001"
    )


def test_escape_keeps_only_letters_digits_and_dash_underscore_dot_star() -> None:
    assert escape_param("a-b_c.d*e~f g+h:i") == "a-b_c.d*e%7Ef%20g%2Bh%3Ai"


def test_links_and_full_urls_use_the_request_host(server: FhirServer) -> None:
    body = as_upstream(server, "Observation?patient=S0000001&code=K").json()
    urls = [link["url"] for link in body["link"]] + [entry["fullUrl"] for entry in body["entry"]]
    assert all(url.startswith("http://localhost:8080/fhir") for url in urls)
    assert body["link"][1]["url"].startswith("http://localhost:8080/fhir?_getpages=")


def test_empty_result_has_total_zero_self_link_and_no_entry(server: FhirServer) -> None:
    body = as_upstream(server, "Patient?identifier=S7777777&_format=json").json()
    assert body["total"] == 0
    assert [link["relation"] for link in body["link"]] == ["self"]
    assert "entry" not in body


def test_identical_queries_differ_only_in_bundle_id_and_last_updated(server: FhirServer) -> None:
    first = as_upstream(server, "Observation?patient=S0000001&code=MG&_format=json")
    second = as_upstream(server, "Observation?patient=S0000001&code=MG&_format=json")
    assert first.json()["id"] != second.json()["id"]
    assert uuid.UUID(first.json()["id"]).version == 4
    assert masked(first.text) == masked(second.text)


def test_bundle_last_updated_is_an_instant_with_milliseconds(server: FhirServer) -> None:
    stamp = as_upstream(server, "Patient?identifier=S0000001").json()["meta"]["lastUpdated"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00", stamp)


def test_pretty_false_gives_compact_json(server: FhirServer) -> None:
    text = as_upstream(server, "Patient?identifier=S0000001&_pretty=false").text
    assert "\n" not in text
    assert text.startswith('{"resourceType":"Bundle"')


def test_render_writes_primitive_arrays_inline_and_object_arrays_on_the_key_line() -> None:
    text = render({"a": [1, "x"], "b": [{"c": [{"d": True}]}, {"e": None}], "f": {}})
    assert text == (
        "{\n"
        '  "a": [ 1, "x" ],\n'
        '  "b": [ {\n'
        '    "c": [ {\n'
        '      "d": true\n'
        "    } ]\n"
        "  }, {\n"
        '    "e": null\n'
        "  } ],\n"
        '  "f": { }\n'
        "}"
    )


def test_render_keeps_non_ascii_text_as_utf8() -> None:
    assert render({"family": "Núñez"}) == '{\n  "family": "Núñez"\n}'


def test_metadata_lists_every_type_with_its_search_params(server: FhirServer) -> None:
    statement = as_upstream(server, "metadata").json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    advertised = {r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    assert advertised == {rtype: {"_id", *params} for rtype, params in REGISTRY.items()}


def test_read_returns_the_resource_pretty_printed(server: FhirServer) -> None:
    response = as_upstream(server, "Observation/1300")
    assert response.status_code == 200
    assert response.text.startswith('{\n  "resourceType": "Observation",\n  "id": "1300",')
    assert response.headers["ETag"] == 'W/"1"'


SPLICE_CASES = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Núñez", "given": ["Zoë", "A"]}], "active": True},
    {
        "resourceType": "Observation",
        "id": "o1",
        "valueQuantity": {"value": 4.25, "unit": "mmol/L"},
        "note": [],
        "extension": [{"url": "x", "valueInteger": 3}, {}],
        "meta": {},
        "flag": None,
        "text": 'quote " and \\ and \n',
    },
]


def test_a_searchset_assembled_from_kept_entry_texts_is_byte_equal_to_rendering_the_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bundle.uuid, "uuid4", lambda: uuid.UUID(int=7))
    monkeypatch.setattr(bundle, "now_instant", lambda: "2024-01-01T00:00:00.000+00:00")
    links = [("self", "http://localhost:8080/fhir/Observation?patient=p1"), ("next", "http://x?_getpages=a")]
    for resources in ([], SPLICE_CASES[:1], SPLICE_CASES):
        for total in (None, 0, len(resources)):
            entries = [(r["resourceType"], r["id"], bundle.render_entry_resource(r)) for r in resources]
            assembled = bundle.render_searchset("http://localhost:8080/fhir", entries, links, total)
            assert assembled == render(bundle.searchset("http://localhost:8080/fhir", resources, links, total))


def test_a_search_answered_from_kept_texts_reads_as_the_first_answer(sample_db: Path) -> None:
    with FhirServer(sample_db) as fresh:
        url = "Observation?patient=S0000001&_count=500&_format=json"
        first = as_upstream(fresh, url)
        kept = len(fresh._app.rendered)  # type: ignore[union-attr]
        second = as_upstream(fresh, url)
        assert kept == len(first.json()["entry"]) > 0
        assert masked(second.text) == masked(first.text)
        assert masked(as_upstream(fresh, url + "&_pretty=false").text) != masked(first.text)


def test_posted_resources_are_never_kept_and_stay_in_their_namespace(sample_db: Path) -> None:
    with FhirServer(sample_db) as fresh:
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "note"},
            "subject": {"reference": "Patient/S0000001"},
        }
        headers = {"Host": "localhost:8080", "Content-Type": "application/fhir+json"}
        posted = requests.post(
            fresh.base_url + "Observation", json=body, timeout=10, headers={**headers, "X-Medbench-Namespace": "a"}
        )
        assert posted.status_code == 201
        url = fresh.base_url + f"Observation?_id={posted.json()['id']}"
        seen_by_a = requests.get(url, headers={**headers, "X-Medbench-Namespace": "a"}, timeout=10).json()
        seen_by_b = requests.get(url, headers={**headers, "X-Medbench-Namespace": "b"}, timeout=10).json()
        assert [e["resource"]["id"] for e in seen_by_a["entry"]] == [posted.json()["id"]]
        assert "entry" not in seen_by_b
        assert len(fresh._app.rendered) == 0  # type: ignore[union-attr]
