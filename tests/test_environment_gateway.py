"""The FHIR gateway: the model sees the display base, requests reach the real server, texts match upstream."""

import json
import socket

import pytest
import requests
from werkzeug import Request, Response

from helpers.fake_http import base_url, fhir_response, raw_target, serving
from medbench.environment.gateway import FhirGateway

DISPLAY = "http://localhost:8080/fhir/"
BUNDLE_TEMPLATE = (
    '{{\n  "resourceType": "Bundle",\n  "link": [ {{\n    "url": "http://{host}/fhir/Patient?name=Zoë"\n  }} ]\n}}'
)


class FakeFhir:
    """Stand-in FHIR server: answers by path, records what it received, sends HAPI's empty reason phrases."""

    seen: list[dict] = []

    @classmethod
    def answer(cls, request: Request) -> Response:
        target = raw_target(request)
        if request.method == "POST":
            body = request.get_data()
            cls.seen.append(
                {"method": "POST", "path": target, "host": request.host, "body": body, "type": request.content_type}
            )
            if json.loads(body).get("resourceType") != "Observation":
                return fhir_response(b'{"resourceType": "OperationOutcome"}', 400)
            return fhir_response(body, 201)
        cls.seen.append({"method": "GET", "path": target, "host": request.host})
        path = target.split("?")[0].split("&")[0]
        if path == "/fhir/bad":
            return fhir_response(b'{"resourceType": "OperationOutcome"}', 400)
        if path == "/fhir/boom":
            return fhir_response(b"", 500)
        if path == "/fhir/missing":
            return fhir_response(b"", 404, reason="Not Found")
        if path == "/fhir/latin":
            return fhir_response("café".encode("latin-1"), content_type="text/plain; charset=ISO-8859-1")
        if path == "/fhir/nocharset":
            return fhir_response("Zoë".encode(), content_type="application/fhir+json")
        if path == "/fhir/redirect":
            return fhir_response(b"", 302, headers={"Location": target.split("to=", 1)[1].split("&")[0]})
        return fhir_response(BUNDLE_TEMPLATE.format(host=request.host))


@pytest.fixture(scope="module")
def server():
    with serving(FakeFhir.answer) as fake:
        yield base_url(fake, "fhir/")


@pytest.fixture
def gateway(server):
    FakeFhir.seen.clear()
    with FhirGateway(server) as gw:
        yield gw


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_display_url_reaches_real_server_with_display_host_header(gateway):
    response = gateway.get(f"{DISPLAY}Patient?name=Zo%C3%AB&_format=json")
    assert response.ok and response.status == 200
    assert FakeFhir.seen == [
        {"method": "GET", "path": "/fhir/Patient?name=Zo%C3%AB&_format=json", "host": "localhost:8080"}
    ]


def test_body_is_returned_exactly_as_sent_so_links_show_display_host(gateway):
    response = gateway.get(f"{DISPLAY}Patient?_format=json")
    assert response.text == BUNDLE_TEMPLATE.format(host="localhost:8080")
    assert response.error_message is None


def test_paging_link_without_trailing_slash_is_mapped(gateway):
    assert gateway.get("http://localhost:8080/fhir?_getpages=abc&_getpagesoffset=20").ok
    assert FakeFhir.seen[-1]["path"] == "/fhir?_getpages=abc&_getpagesoffset=20"


def test_client_error_text_has_empty_reason_and_display_url(gateway):
    response = gateway.get(f"{DISPLAY}bad?date=a,b&_format=json")
    assert not response.ok and response.status == 400
    assert response.error_message == "400 Client Error:  for url: http://localhost:8080/fhir/bad?date=a,b&_format=json"


def test_server_error_text_says_server_error(gateway):
    assert gateway.get(f"{DISPLAY}boom&_format=json").error_message == (
        "500 Server Error:  for url: http://localhost:8080/fhir/boom&_format=json"
    )


def test_reason_phrase_is_shown_when_the_server_sends_one(gateway):
    assert (
        gateway.get(f"{DISPLAY}missing").error_message
        == "404 Client Error: Not Found for url: http://localhost:8080/fhir/missing"
    )


def test_error_text_equals_what_plain_requests_says_for_the_same_url(gateway, server):
    """Spaces and newlines are quoted by requests; the display URL in the error is the quoted one."""
    suffix = "bad?name=Lisa Watkins\nmore&_format=json"
    with pytest.raises(requests.HTTPError) as plain:
        requests.get(server + suffix, timeout=10).raise_for_status()
    expected = str(plain.value).replace(server, DISPLAY)
    assert gateway.get(DISPLAY + suffix).error_message == expected
    assert "Lisa%20Watkins%0Amore" in expected


def test_body_is_decoded_with_the_declared_charset(gateway):
    assert gateway.get(f"{DISPLAY}latin").text == "café"


def test_body_without_charset_is_decoded_as_utf8(gateway):
    assert gateway.get(f"{DISPLAY}nocharset").text == "Zoë"


def test_connection_error_names_display_host_not_real_port():
    port = closed_port()
    with FhirGateway(f"http://127.0.0.1:{port}/fhir/") as gw:
        response = gw.get(f"{DISPLAY}Patient?identifier=S1&_format=json")
    assert not response.ok and response.status is None
    assert "host='localhost', port=8080" in response.error_message
    assert "url: /fhir/Patient?identifier=S1&_format=json" in response.error_message
    assert f"port={port}" not in response.error_message and "127.0.0.1" not in response.error_message


def test_url_without_scheme_gives_requests_invalid_url_text(gateway):
    assert gateway.get("Patient?identifier=S1&_format=json").error_message == (
        "Invalid URL 'Patient?identifier=S1&_format=json': No scheme supplied. "
        "Perhaps you meant https://Patient?identifier=S1&_format=json?"
    )
    assert FakeFhir.seen == []


class Trap:
    """Another service on the same host: the model must never reach it through the harness."""

    hits: list[str] = []

    @classmethod
    def leak(cls, request: Request) -> Response:
        cls.hits.append(f"{request.method} {raw_target(request)} auth={request.headers.get('Authorization')}")
        return Response(b"the secret of another service")


@pytest.fixture(scope="module")
def trap():
    with serving(Trap.leak) as fake:
        yield fake.port


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/leak&_format=json",
        "http://localhost:{port}/fhir/Patient&_format=json",
        "http://localhost:8080@127.0.0.1:{port}/fhir/Patient&_format=json",
        "http://localhost:8080/fhir/%2e%2e/%2e%2e/leak&_format=json",
        "http://localhost:8080\\@127.0.0.1:{port}/fhir/&_format=json",
    ],
)
def test_get_off_the_display_base_is_refused_and_nothing_is_sent(gateway, trap, url):
    Trap.hits.clear()
    response = gateway.get(url.format(port=trap))
    assert response.refused and not response.ok and response.status is None
    assert response.error_message.startswith("Refused: ") and "not under the FHIR base URL" in response.error_message
    assert "secret" not in response.text
    assert Trap.hits == [] and FakeFhir.seen == []


def test_execute_post_off_the_display_base_is_refused_and_nothing_is_sent(gateway, trap):
    Trap.hits.clear()
    response = gateway.post(f"http://127.0.0.1:{trap}/fhir/Observation", {"resourceType": "Observation"})
    assert response.refused and not response.ok
    assert Trap.hits == [] and FakeFhir.seen == []


def test_redirects_are_not_followed_even_to_the_fhir_base(gateway, trap):
    Trap.hits.clear()
    for target in (f"http://127.0.0.1:{trap}/leak", f"{DISPLAY}Patient"):
        response = gateway.get(f"{DISPLAY}redirect?to={target}&_format=json")
        assert not response.ok and response.status == 302 and not response.refused
        assert response.error_message.startswith(
            "302 Redirect not followed for url: http://localhost:8080/fhir/redirect"
        )
    assert Trap.hits == [] and [hit["path"].split("?")[0] for hit in FakeFhir.seen] == ["/fhir/redirect"] * 2


def test_an_identity_gateway_refuses_other_hosts_too(server, trap):
    Trap.hits.clear()
    with FhirGateway(server, display_base=server) as gw:
        assert gw.get(f"http://127.0.0.1:{trap}/leak").refused
    assert Trap.hits == []


def test_post_body_that_cannot_be_encoded_is_an_error_response_not_an_exception(gateway):
    lone_surrogate = gateway.post(f"{DISPLAY}Observation", {"resourceType": "Observation", "note": "\ud800"})
    assert not lone_surrogate.ok and lone_surrogate.error_message.startswith("UnicodeEncodeError: ")
    assert FakeFhir.seen == []


def test_other_hosts_are_not_rewritten():
    port = closed_port()
    with FhirGateway(f"http://127.0.0.1:{port}/fhir/") as gw:
        assert gw.to_real("http://example.org/fhir/Patient") == "http://example.org/fhir/Patient"
        assert gw.to_real(f"{DISPLAY}Patient") == f"http://127.0.0.1:{port}/fhir/Patient"
        assert gw.to_real("http://localhost:8080/fhirX/Patient") == f"http://127.0.0.1:{port}/fhirX/Patient"


def test_identity_gateway_shows_real_url_and_real_host(server):
    FakeFhir.seen.clear()
    with FhirGateway(server, display_base=server) as gw:
        response = gw.get(f"{server}bad&_format=json")
    assert response.error_message == f"400 Client Error:  for url: {server}bad&_format=json"
    assert FakeFhir.seen[0]["host"] == server.split("/")[2]


def test_display_base_without_trailing_slash_is_normalised(server):
    with FhirGateway(server, display_base="http://LOCALHOST:8080/fhir") as gw:
        assert gw.display_base == DISPLAY
        assert gw.get(f"{DISPLAY}Patient").ok


def test_post_sends_json_payload_to_real_server(gateway):
    payload = {"resourceType": "Observation", "valueString": "118/77 mmHg", "note": "Zoë"}
    response = gateway.post(f"{DISPLAY}Observation", payload)
    assert response.ok and response.status == 201
    sent = FakeFhir.seen[-1]
    assert sent["path"] == "/fhir/Observation" and sent["host"] == "localhost:8080"
    assert json.loads(sent["body"]) == payload
    assert sent["type"].startswith("application/fhir+json")


def test_refused_post_gives_upstream_style_error_text(gateway):
    response = gateway.post(f"{DISPLAY}Observation", {"resourceType": "Patient"})
    assert response.status == 400
    assert response.error_message == "400 Client Error:  for url: http://localhost:8080/fhir/Observation"


# --- against the embedded FHIR server --------------------------------------------------------

PATIENT = {
    "resourceType": "Patient",
    "id": "S0568791",
    "meta": {"versionId": "1", "lastUpdated": "2023-11-01T00:00:00+00:00"},
    "identifier": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "value": "S0568791"}],
    "name": [{"family": "Watkins", "given": ["Lisa"]}],
    "birthDate": "1996-10-10",
    "gender": "female",
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from medbench.fhir import FhirServer, build_database

    database = tmp_path_factory.mktemp("ehr") / "tiny.sqlite"
    build_database(database, [PATIENT])
    with FhirServer(database) as fhir:
        yield fhir


def test_embedded_server_links_show_the_display_base(embedded):
    with FhirGateway(embedded.base_url) as gw:
        response = gw.get(f"{DISPLAY}Patient?identifier=S0568791&_format=json")
    bundle = json.loads(response.text)
    assert response.ok and bundle["entry"][0]["fullUrl"] == f"{DISPLAY}Patient/S0568791"
    assert all(link["url"].startswith("http://localhost:8080/fhir") for link in bundle["link"])
    assert embedded.base_url.split("/")[2] not in response.text


def test_embedded_server_error_reads_like_upstream(embedded):
    with FhirGateway(embedded.base_url) as gw:
        response = gw.get(f"{DISPLAY}Nonsense?x=1&_format=json")
    assert response.error_message == "404 Client Error:  for url: http://localhost:8080/fhir/Nonsense?x=1&_format=json"


def test_embedded_server_stores_a_post_and_refuses_a_mistyped_one(embedded):
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "BP"},
        "subject": {"reference": "Patient/S0568791"},
    }
    with FhirGateway(embedded.base_url) as gw:
        created = gw.post(f"{DISPLAY}Observation", observation)
        refused = gw.post(f"{DISPLAY}Observation", {"resourceType": "Patient"})
    embedded.reset_writes()
    assert created.ok and created.status == 201 and json.loads(created.text)["status"] == "final"
    assert refused.error_message == "400 Client Error:  for url: http://localhost:8080/fhir/Observation"
