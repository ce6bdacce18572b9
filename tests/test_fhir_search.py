"""HAPI R4 search semantics of the embedded FHIR server, over real HTTP on loopback.

Data: tests/helpers/fhir_sample.py (its docstring lists the facts used here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from medbench.fhir import FhirServer


@pytest.fixture(scope="module")
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


def get(server: FhirServer, url: str) -> requests.Response:
    return requests.get(server.base_url + url, timeout=10)


def ids(server: FhirServer, url: str) -> list[str]:
    response = get(server, url)
    assert response.status_code == 200, response.text
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


def diagnostics(response: requests.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


# --- string parameters ---------------------------------------------------------------------


def test_given_family_birthdate_lookup_is_case_insensitive(server: FhirServer) -> None:
    assert ids(server, "Patient?given=lisa&family=WATKINS&birthdate=1996-10-10&_format=json") == ["S0000001"]


def test_string_search_is_starts_with_so_watkins_also_finds_watkinson(server: FhirServer) -> None:
    assert ids(server, "Patient?family=Watkins") == ["S0000001", "S0000003"]


def test_string_search_ignores_accents_both_ways(server: FhirServer) -> None:
    assert ids(server, "Patient?family=nunez") == ["S0000002"]
    assert ids(server, "Patient?given=Jos%C3%A9") == ["S0000002"]


def test_exact_modifier_is_case_and_accent_sensitive(server: FhirServer) -> None:
    assert ids(server, "Patient?family:exact=Watkins") == ["S0000001"]
    assert ids(server, "Patient?family:exact=watkins") == []
    assert ids(server, "Patient?family:exact=Nunez") == []


def test_contains_modifier_matches_inside_a_name(server: FhirServer) -> None:
    assert ids(server, "Patient?name:contains=atkin") == ["S0000001", "S0000003"]


def test_name_matches_given_or_family(server: FhirServer) -> None:
    assert ids(server, "Patient?name=lisa") == ["S0000001", "S0000003"]
    assert ids(server, "Patient?name=nun") == ["S0000002"]


def test_address_params_match_address_parts(server: FhirServer) -> None:
    assert ids(server, "Patient?address-city=san") == ["S0000003"]
    assert ids(server, "Patient?address=palo") == ["S0000001"]


def test_comma_separated_string_values_are_ored(server: FhirServer) -> None:
    assert ids(server, "Patient?family=nunez,watkinson") == ["S0000002", "S0000003"]


# --- token parameters ----------------------------------------------------------------------


def test_identifier_token_finds_the_mrn(server: FhirServer) -> None:
    assert ids(server, "Patient?identifier=S0000002&_format=json") == ["S0000002"]


def test_code_token_with_or_without_system(server: FhirServer) -> None:
    mg = ["1001", "1002", "1003"]
    assert ids(server, "Observation?code=MG&patient=S0000001") == mg
    assert ids(server, "Observation?code=http://loinc.org|MG&patient=S0000001") == mg
    assert ids(server, "Observation?code=http%3A%2F%2Floinc.org%7CMG&patient=S0000001") == mg
    assert ids(server, "Observation?code=http://snomed.info/sct|MG&patient=S0000001") == []
    assert ids(server, "Observation?code=|MG&patient=S0000001") == []


def test_token_codes_are_case_sensitive(server: FhirServer) -> None:
    assert ids(server, "Observation?code=mg&patient=S0000001") == []


def test_comma_separated_token_values_are_ored(server: FhirServer) -> None:
    found = ids(server, "Observation?code=MG,BP&patient=S0000001")
    assert found == ["1001", "1002", "1003", "1300"]


def test_category_and_gender_tokens(server: FhirServer) -> None:
    assert ids(server, "Observation?patient=S0000001&category=vital-signs") == ["1300"]
    assert ids(server, "Condition?patient=S0000001&category=problem-list-item") == ["1400"]
    assert ids(server, "Patient?gender=male") == ["S0000002"]


def test_other_resource_types_search_by_code(server: FhirServer) -> None:
    assert ids(server, "MedicationRequest?patient=S0000001&code=0338-1715-40") == ["1500"]
    assert ids(server, "Procedure?patient=S0000001&code=99214") == ["1600"]
    assert ids(server, "ServiceRequest?patient=S0000001&code=http://loinc.org|4548-4") == ["1700"]


# --- reference parameters ------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["S0000002", "Patient/S0000002", "Patient%2FS0000002"])
def test_patient_reference_as_bare_or_typed_id(server: FhirServer, reference: str) -> None:
    assert ids(server, f"Observation?patient={reference}") == ["1200"]
    assert ids(server, f"Observation?subject={reference}") == ["1200"]


def test_patient_reference_to_another_type_is_400(server: FhirServer) -> None:
    response = get(server, "Observation?patient=Observation/1001")
    assert response.status_code == 400
    assert "patient" in diagnostics(response)


def test_unknown_patient_matches_nothing(server: FhirServer) -> None:
    response = get(server, "Observation?patient=S9999999&code=MG")
    assert response.status_code == 200
    assert response.json()["total"] == 0


# --- date parameters -----------------------------------------------------------------------


def test_date_only_value_means_the_whole_day(server: FhirServer) -> None:
    assert ids(server, "Observation?patient=S0000001&code=MG&date=2023-11-12") == ["1001"]
    assert ids(server, "Observation?patient=S0000001&code=MG&date=2023-11") == ["1001", "1003"]
    assert ids(server, "Observation?patient=S0000001&code=MG&date=2022") == ["1002"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eq2023-11-12", ["1001"]),
        ("ne2023-11-12", ["1002", "1003"]),
        ("gt2023-11-12", ["1003"]),
        ("ge2023-11-12", ["1001", "1003"]),
        ("lt2023-11-12", ["1002"]),
        ("le2023-11-12", ["1001", "1002"]),
        ("sa2023-11-12", ["1003"]),
        ("eb2023-11-12", ["1002"]),
        ("ge2023-11-12T20:00:00Z", ["1001", "1003"]),
        ("gt2023-11-12T20:00:00Z", ["1003"]),
        ("ge2023-11-12T20:00", ["1001", "1003"]),
        ("ge2023-11-12T18:00:00-03:00", ["1003"]),
    ],
)
def test_date_prefixes_follow_fhir_range_semantics(server: FhirServer, value: str, expected: list[str]) -> None:
    assert ids(server, f"Observation?patient=S0000001&code=MG&date={value}") == expected


def test_two_date_params_are_anded(server: FhirServer) -> None:
    url = "Observation?patient=S0000001&code=MG&date=ge2023-11-12T00:00:00Z&date=le2023-11-12T23:59:59Z"
    assert ids(server, url) == ["1001"]


def test_plus_offset_decoded_to_space_is_read_as_plus(server: FhirServer) -> None:
    """Agents write `+01:00` unescaped; the query decoder turns '+' into ' '. HAPI FHIR reads a
    space at the offset position as '+' (BaseDateTimeDt.getOffsetIndex / setTimeZone: "'+' may
    have been replaced with ' ' by the time execution reaches this method"), answers 200 and
    echoes the space form in the self link."""
    response = get(server, "Observation?patient=S0000001&code=MG&date=ge2023-11-12T21:00:00+01:00")
    assert response.status_code == 200
    # read as +01:00 -> 20:00 UTC, so the 20:00 value is included (as -01:00 it would not be)
    assert [e["resource"]["id"] for e in response.json()["entry"]] == ["1001", "1003"]
    self_url = response.json()["link"][0]["url"]
    assert "date=ge2023-11-12T21%3A00%3A00%2001%3A00" in self_url


def test_comma_separated_dates_are_400(server: FhirServer) -> None:
    response = get(server, "Observation?patient=S0000001&code=MG&date=2023-11-12,2023-11-13")
    assert response.status_code == 400
    assert "date" in diagnostics(response)


@pytest.mark.parametrize("value", ["yesterday", "2023-13-01", "2023-11-12T25:00", "ge", "2023-11-12T10:15:00+0100"])
def test_malformed_date_is_400_naming_the_value(server: FhirServer, value: str) -> None:
    response = get(server, f"Observation?patient=S0000001&date={value}")
    assert response.status_code == 400
    assert "Invalid date/time format" in diagnostics(response)


def test_birthdate_and_other_date_params(server: FhirServer) -> None:
    assert ids(server, "Patient?birthdate=1950-02-03") == ["S0000002"]
    assert ids(server, "Patient?birthdate=lt1970") == ["S0000002"]
    assert ids(server, "MedicationRequest?patient=S0000001&date=2023-11-12") == ["1500"]
    assert ids(server, "MedicationRequest?patient=S0000001&authoredon=ge2023-11-13") == []
    assert ids(server, "Procedure?patient=S0000001&date=ge2023-01-01") == ["1600"]
    assert ids(server, "Condition?patient=S0000001&onset-date=2019-03-04") == ["1400"]
    assert ids(server, "ServiceRequest?patient=S0000001&authored=2023-01") == ["1700"]


# --- paging, count, sort, order -------------------------------------------------------------


def test_default_page_is_20_with_a_next_link_and_no_total(server: FhirServer) -> None:
    body = get(server, "Observation?patient=S0000001&code=K").json()
    assert len(body["entry"]) == 20
    assert "total" not in body
    relations = [link["relation"] for link in body["link"]]
    assert relations == ["self", "next"]


def test_next_link_pages_through_the_rest(server: FhirServer) -> None:
    first = get(server, "Observation?patient=S0000001&code=K&_format=json").json()
    next_url = first["link"][1]["url"]
    assert next_url.startswith(server.base_url.rstrip("/") + "?_getpages=")
    assert next_url.endswith("&_getpagesoffset=20&_count=20&_format=json&_pretty=true&_bundletype=searchset")
    second = requests.get(next_url, timeout=10).json()
    first_ids = [e["resource"]["id"] for e in first["entry"]]
    second_ids = [e["resource"]["id"] for e in second["entry"]]
    assert first_ids + second_ids == [str(1100 + day) for day in range(25)]
    assert second["total"] == 25
    assert [link["relation"] for link in second["link"]] == ["self", "previous"]


def test_count_5000_returns_every_match_in_one_page(server: FhirServer) -> None:
    body = get(server, "Observation?patient=S0000001&code=K&_count=5000&_format=json").json()
    assert len(body["entry"]) == 25
    assert body["total"] == 25
    assert [link["relation"] for link in body["link"]] == ["self"]


def test_count_smaller_than_matches_pages_by_that_size(server: FhirServer) -> None:
    body = get(server, "Observation?patient=S0000001&code=K&_count=10").json()
    assert len(body["entry"]) == 10
    assert "_getpagesoffset=10&_count=10" in body["link"][1]["url"]


def test_count_zero_answers_only_the_total(server: FhirServer) -> None:
    body = get(server, "Observation?patient=S0000001&code=K&_count=0").json()
    assert body["total"] == 25
    assert "entry" not in body
    assert [link["relation"] for link in body["link"]] == ["self"]


def test_unparsable_count_is_ignored_like_hapi(server: FhirServer) -> None:
    """HAPI's RestfulServerUtils.tryToExtractNamedParameter swallows a NumberFormatException."""
    body = get(server, "Observation?patient=S0000001&code=K&_count=lots").json()
    assert len(body["entry"]) == 20


def test_expired_page_id_is_410(server: FhirServer) -> None:
    response = requests.get(server.base_url.rstrip("/") + "?_getpages=nope&_getpagesoffset=20&_count=20", timeout=10)
    assert response.status_code == 410
    assert "does not exist and may have expired" in diagnostics(response)


def test_results_keep_insertion_order_without_sort(server: FhirServer) -> None:
    assert ids(server, "Observation?patient=S0000001&code=MG") == ["1001", "1002", "1003"]


def test_sort_by_date_ascending_and_descending(server: FhirServer) -> None:
    assert ids(server, "Observation?patient=S0000001&code=MG&_sort=date") == ["1002", "1001", "1003"]
    assert ids(server, "Observation?patient=S0000001&code=MG&_sort=-date") == ["1003", "1001", "1002"]


def test_sort_by_a_non_date_param_is_400(server: FhirServer) -> None:
    response = get(server, "Observation?patient=S0000001&_sort=code")
    assert response.status_code == 400


# --- malformed and unknown input -----------------------------------------------------------


def test_unknown_parameter_is_400_as_hapi_jpa_answers_it(server: FhirServer) -> None:
    """HAPI JPA rejects unknown search parameters with InvalidRequestException (HAPI-0524)
    unless the client sends `Prefer: handling=lenient` (SearchPreferHandlingInterceptorJpaTest)."""
    response = get(server, "Observation?patient=S0000001&foo=bar")
    assert response.status_code == 400
    assert diagnostics(response).startswith('HAPI-0524: Unknown search parameter "foo" for resource type "Observation"')


def test_unsupported_modifier_is_400(server: FhirServer) -> None:
    assert get(server, "Observation?code:above=MG").status_code == 400


def test_url_without_question_mark_is_404_unknown_resource_type(server: FhirServer) -> None:
    """The harness appends `&_format=json` to URLs without `?`: HAPI takes `Patient&_format=json`
    as the resource type and answers ResourceNotFoundException (RestfulServer, HAPI-0302)."""
    response = get(server, "Patient&_format=json")
    assert response.status_code == 404
    assert diagnostics(response).startswith("HAPI-0302: Unknown resource type 'Patient&_format=json'")


def test_read_by_id_and_read_with_appended_format_is_404(server: FhirServer) -> None:
    assert get(server, "Patient/S0000001").json()["id"] == "S0000001"
    response = get(server, "Patient/S0000001&_format=json")
    assert response.status_code == 404
    assert "is not known" in diagnostics(response)


def test_blank_values_are_ignored(server: FhirServer) -> None:
    assert ids(server, "Observation?patient=S0000002&code=&date=") == ["1200"]


@pytest.mark.parametrize(
    "url",
    [
        "Observation?patient=%zz",
        "Observation?patient=S0000001&date=ge2023-11-12T10:15:00%2B99:99",
        "Observation?_sort=&patient=",
        "Observation?code=|&patient=S0000001",
        "Observation?code=%00%FF",
        "Patient?name=" + "x" * 5000,
        "Patient?name:exact=%E2%9C%93",
        "Observation?_count=-5",
        "Observation?_format=json&_format=json",
        "Patient?birthdate=ge",
        "Unknown/1/_history/2",
        "Patient/S0000001/_history/1",
        "",
    ],
)
def test_bad_input_never_gets_a_500(server: FhirServer, url: str) -> None:
    response = get(server, url)
    assert response.status_code < 500
    assert response.json()["resourceType"] in ("Bundle", "OperationOutcome", "Patient")


def test_format_json_is_accepted_and_other_formats_are_refused(server: FhirServer) -> None:
    assert get(server, "Patient?_format=application/fhir%2Bjson").status_code == 200
    assert get(server, "Patient?_format=xml").status_code == 400


def test_concurrent_clients_get_the_same_answers_as_a_single_client(server: FhirServer) -> None:
    urls = [
        "Observation?patient=S0000001&code=MG",
        "Patient?family=watkins",
        "Observation?patient=S0000001&code=K&_count=5000",
        "Observation?patient=S0000001&category=vital-signs&date=ge2023-11-12",
    ]
    expected = {url: ids(server, url) for url in urls}
    failures: list[str] = []

    def client(offset: int) -> None:
        session = requests.Session()
        for step in range(20):
            url = urls[(offset + step) % len(urls)]
            found = [
                e["resource"]["id"] for e in session.get(server.base_url + url, timeout=10).json().get("entry", [])
            ]
            if found != expected[url]:
                failures.append(url)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
