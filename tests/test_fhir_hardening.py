"""The FHIR server under hostile input: bad bodies are HAPI-style 4xx (never 500), slow or
stalled clients never hold a worker or a connection for ever, and per-request memory is
bounded (body size, header size, kept paging state)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from medbench.fhir import FhirServer
from medbench.fhir.paging import PagedSearches
from medbench.serving import ServerLimits

TIGHT = ServerLimits(
    threads=2,
    connection_limit=4,
    max_body_bytes=64 * 1024,
    max_header_bytes=8 * 1024,
    idle_timeout_s=1,
    request_timeout_s=2,
)
BP = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "BP"},
    "valueString": "118/77 mmHg",
    "subject": {"reference": "Patient/S0000002"},
}
GUARD_S = 30  # a socket timeout that only ends a hung test; no assertion depends on timing


@pytest.fixture(scope="module")
def server(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db) as running:
        yield running


@pytest.fixture
def tight(sample_db: Path) -> Iterator[FhirServer]:
    with FhirServer(sample_db, limits=TIGHT) as running:
        yield running


def post_raw(server: FhirServer, body: bytes) -> requests.Response:
    return requests.post(
        server.base_url + "Observation", data=body, headers={"Content-Type": "application/fhir+json"}, timeout=GUARD_S
    )


def body_with(value_json: str) -> bytes:
    return (
        '{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "valueString": ' + value_json + "}"
    ).encode()


HOSTILE_BODIES = [
    pytest.param(
        b'{"resourceType": "Observation", "extension": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nesting depth",
        id="nested-100k-deep",
    ),
    pytest.param(
        b'{"resourceType": "Observation", "a": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}",
        "nesting depth",
        id="nested-past-the-cap",
    ),
    pytest.param(
        (
            '{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "valueInteger": 1'
            + "0" * 5000
            + "}"
        ).encode(),
        "digits",
        id="integer-of-5000-digits",
    ),
    pytest.param(body_with('"\\ud800 lone"'), "lone surrogate", id="lone-surrogate"),
    pytest.param(b'{"resourceType": "Observation", "\\udfff": 1}', "lone surrogate", id="lone-surrogate-key"),
    pytest.param(
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "valueQuantity": {"value": NaN}}',
        "NaN",
        id="nan",
    ),
    pytest.param(
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "valueQuantity": {"value": 1e999}}',
        "out of range",
        id="infinite-number",
    ),
    pytest.param(b'{"resourceType": "Observation", "status": "fin\xff\xfeal"}', "not UTF-8", id="invalid-utf8"),
    pytest.param(
        json.dumps({**BP, "subject": True}).encode(), "Found incorrect type for element subject", id="subject-true"
    ),
    pytest.param(b"", "Failed to parse request body", id="empty-body"),
]


@pytest.mark.parametrize(("body", "fragment"), HOSTILE_BODIES)
def test_hostile_post_bodies_are_400_operation_outcomes_and_not_stored(
    server: FhirServer, body: bytes, fragment: str
) -> None:
    response = post_raw(server, body)
    assert response.status_code == 400, response.text[:500]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert fragment in outcome["issue"][0]["diagnostics"]
    assert server.store.count_writes() == 0


def test_hostile_urls_and_headers_are_4xx_not_500(server: FhirServer) -> None:
    for path in (
        "Observation?code=%ED%A0%80",
        "Observation?date=%FF%FE",
        "Patient/%ED%A0%80",
        "Observation?patient=" + "x" * 5000,
        "Observation?_count=1" + "0" * 5000,
    ):
        status = requests.get(server.base_url + path, timeout=GUARD_S).status_code
        assert status < 500, path
    too_many = requests.get(server.base_url + "Observation?code=" + "K," * 2000, timeout=GUARD_S)
    assert too_many.status_code == 400 and "Too many values" in too_many.json()["issue"][0]["diagnostics"]
    assert (
        requests.get(
            server.base_url + "Observation",
            headers={"X-Medbench-Namespace": "\udfff".encode("utf-8", "surrogatepass")},
            timeout=GUARD_S,
        ).status_code
        == 400
    )


def read_status_line(sock: socket.socket) -> bytes:
    return sock.makefile("rb").readline()


def closed_by_server(sock: socket.socket) -> bool:
    """Block (up to the guard) until the server closes the connection or sends something."""
    sock.settimeout(GUARD_S)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_body_shorter_than_its_content_length_holds_no_worker_and_is_closed(tight: FhirServer) -> None:
    """Three stalled uploads on a two-worker server: other clients are still answered, and the
    stalled connections are closed once idle."""
    stalled = []
    for _ in range(3):
        sock = socket.create_connection((tight.host, tight.port), timeout=GUARD_S)
        sock.sendall(
            b'POST /fhir/Observation HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{"resourceType"'
        )
        stalled.append(sock)
    assert requests.get(tight.base_url + "Patient?identifier=S0000001", timeout=GUARD_S).json()["total"] == 1
    for sock in stalled:
        assert closed_by_server(sock)
        sock.close()


def test_a_client_trickling_its_request_is_dropped_after_the_request_timeout(tight: FhirServer) -> None:
    """A byte every 0.3 s never looks idle; the whole-request deadline still ends it."""
    pause = threading.Event()
    request = b"GET /fhir/Patient?identifier=S0000001 HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"y" * 500
    with socket.create_connection((tight.host, tight.port), timeout=GUARD_S) as sock:
        sock.setblocking(False)
        for byte in request:
            try:
                sock.send(bytes([byte]))
                if sock.recv(1) == b"":
                    break
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            pause.wait(0.3)
        else:
            pytest.fail("the server kept a trickling request open for 150 s")


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_sent(tight: FhirServer) -> None:
    with socket.create_connection((tight.host, tight.port), timeout=GUARD_S) as sock:
        sock.sendall(
            b"POST /fhir/Observation HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 20000000\r\n\r\n"
        )
        stream = sock.makefile("rb")
        assert stream.readline() == b"HTTP/1.1 413 \r\n"
        head = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            head[name.strip().lower()] = value.strip()
        outcome = json.loads(stream.read(int(head["content-length"])))
    assert head["content-type"] == "application/fhir+json;charset=UTF-8"
    assert outcome["resourceType"] == "OperationOutcome" and "too large" in outcome["issue"][0]["diagnostics"]


def test_a_chunked_body_over_the_limit_is_413(tight: FhirServer) -> None:
    chunks = (b"x" * 8192 for _ in range(20))
    response = requests.post(tight.base_url + "Observation", data=chunks, timeout=GUARD_S)
    assert response.status_code == 413 and response.json()["resourceType"] == "OperationOutcome"


def test_headers_over_the_limit_are_431(tight: FhirServer) -> None:
    response = requests.get(tight.base_url + "metadata", headers={"X-Big": "z" * 20_000}, timeout=GUARD_S)
    assert response.status_code == 431 and response.json()["resourceType"] == "OperationOutcome"


def test_open_connections_never_exceed_the_limit_and_every_client_is_answered(tight: FhirServer) -> None:
    """Ten keep-alive clients against a limit of four: the rest wait in the backlog until idle
    connections are closed; each client samples the server's count once answered."""
    start = threading.Barrier(10)

    def client(_: int) -> tuple[int, int]:
        with socket.create_connection((tight.host, tight.port), timeout=GUARD_S) as sock:
            start.wait(timeout=GUARD_S)
            sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
            status = read_status_line(sock)
            return int(status.split()[1]), tight.open_connections

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(client, range(10)))
    assert [status for status, _ in answers] == [200] * 10
    assert max(seen for _, seen in answers) <= TIGHT.connection_limit


def test_paging_state_is_bounded_by_bytes_not_only_by_count() -> None:
    paged = PagedSearches(max_searches=1000, max_bytes=1_000_000)
    ids = [paged.add(range(50_000), 1, None) for _ in range(20)]  # 400 kB each
    assert paged.kept_bytes <= 1_000_000 and len(paged) == 2
    assert paged.get(ids[-1]).seqs[:3].tolist() == [0, 1, 2]
    with pytest.raises(Exception, match="does not exist"):
        paged.get(ids[0])


def test_one_search_larger_than_the_budget_is_kept_alone_so_its_next_link_works() -> None:
    paged = PagedSearches(max_bytes=1000)
    paged.add(range(10), 1, None)
    big = paged.add(range(10_000), 1, None)
    assert len(paged) == 1 and len(paged.get(big).seqs) == 10_000


def test_many_small_page_searches_keep_the_servers_paging_state_in_budget(server: FhirServer) -> None:
    server.paged.max_bytes = 20_000
    links = []
    for _ in range(200):
        bundle = requests.get(server.base_url + "Observation?patient=S0000001&_count=1", timeout=GUARD_S).json()
        links.append(next(link["url"] for link in bundle["link"] if link["relation"] == "next"))
    assert server.paged.kept_bytes <= 20_000
    assert requests.get(links[-1], timeout=GUARD_S).status_code == 200
    assert requests.get(links[0], timeout=GUARD_S).status_code == 410
