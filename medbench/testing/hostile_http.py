"""Random and adversarial HTTP requests against a running FHIR server, for the test suite's
bounded fuzz test and `scripts/fuzz_fhir_server.py`.

Requests go over raw sockets so that malformed HTTP is possible too: odd methods and targets,
percent-encoded junk and lone surrogates, wrong or missing Content-Length, chunked bodies, huge
headers, and POST bodies made by mutating valid resources (wrong JSON types, deep nesting,
5,000-digit integers, lone surrogates, truncation, random bytes). A request *fails* when the
server answers 5xx or neither answers nor closes the connection within the timeout (a hang).
A body shorter than its Content-Length is expected to be closed by the server once idle.
"""

from __future__ import annotations

import json
import random
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from medbench.fhir.searchparams import REGISTRY

_TYPES = [*REGISTRY, "Encounter", "Foo", "metadata", "$medbench-namespace", "_history", "", "%ED%A0%80"]
_PARAMS = sorted({name for params in REGISTRY.values() for name in params}) + [
    "_count",
    "_sort",
    "_total",
    "_format",
    "_pretty",
    "_id",
    "_getpagesoffset",
    "code:text",
    "date:missing",
    "x",
    "",
]
_VALUES = [
    "S0000001",
    "K",
    "MG",
    "http://loinc.org|K",
    "|K",
    "vital-signs",
    "ge2023-11-12",
    "le2023-11-13T10:15:00 00:00",
    "2023-11-12T10%3A15%3A00%2B00%3A00",
    "2023-13-45",
    "ap2023",
    "-1",
    "0",
    "5000",
    "1" + "0" * 5000,
    "%ED%A0%80",
    "%FF%FE",
    "%",
    "%00",
    "a,b",
    "lisa",
    "x" * 3000,
    "json",
    "false",
    "-_id",
    "date,-date",
    "accurate",
]
_GOOD_SEARCHES = [
    "Patient?identifier=S0000001",
    "Patient?given=Lisa&family=Watkins&birthdate=1996-10-10",
    "Patient?name=lisa",
    "Observation?patient=S0000001&code=K",
    "Observation?patient=S0000001&code=K&date=ge2023-11-12",
    "Observation?_count=1",
    "Observation?patient=S0000002&category=vital-signs",
    "Condition?patient=S0000001",
    "MedicationRequest?patient=S0000001",
    "Observation?patient=S0000001&code=MG&_sort=-date&_count=2",
    "metadata",
]
_RESOURCES: list[dict[str, Any]] = [
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "BP"},
        "valueString": "118/77 mmHg",
        "effectiveDateTime": "2023-11-13T10:15:00+00:00",
        "subject": {"reference": "Patient/S0000001"},
        "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs"}]}],
    },
    {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "authoredOn": "2023-11-13T10:15:00+00:00",
        "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0338-1715-40"}]},
        "dosageInstruction": [{"route": "IV", "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "g"}}]}],
        "subject": {"reference": "Patient/S0000001"},
    },
    {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "priority": "stat",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/S0000002"},
        "note": {"text": "hello"},
        "occurrenceDateTime": "2023-11-14T08:00:00+00:00",
    },
    {
        "resourceType": "Patient",
        "name": [{"family": "Doe", "given": ["Jo"]}],
        "birthDate": "1990-01-01",
        "gender": "female",
    },
]


@dataclass(frozen=True)
class FuzzRequest:
    """One request as bytes, with a short description for reports."""

    data: bytes
    summary: str
    short_body: bool = False  # Content-Length larger than the body sent: the server should close


@dataclass
class FuzzReport:
    """What a fuzz run saw."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # "<status> <summary>"
    hangs: list[str] = field(default_factory=list)
    closed_without_answer: int = 0

    @property
    def failures(self) -> int:
        return len(self.server_errors) + len(self.hangs)


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(12)
    if pick == 0:
        return rng.choice([True, False, None])
    if pick == 1:
        return rng.choice([0, -1, 2**63, 1.5, 1e308, -0.0])
    if pick == 2:
        return "\ud800" + rng.choice(["", "x", "\udc00\ud800"])
    if pick == 3 and depth < 3:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if pick == 4 and depth < 3:
        return {rng.choice(["reference", "text", "value", "coding", "x"]): _json_value(rng, depth + 1)}
    if pick == 5:
        return rng.choice(
            ["Patient/S0000001", "Patient/", "S1", "http://x/Patient/1", "#c", "Foo/1", "Patient/S0000001/_history/1"]
        )
    if pick == 6:
        return rng.choice(["2023-11-13", "2023-02-30", "yesterday", "2023-11-13T10:15:00Z", ""])
    return rng.choice(["final", "active", "order", "x" * rng.randrange(1, 200), "ümlaut", "\x00"])


def _mutated_body(rng: random.Random) -> tuple[bytes, str]:
    resource = json.loads(json.dumps(rng.choice(_RESOURCES)))
    kind = rng.randrange(14)
    if kind == 0:
        return b'{"resourceType": "Observation", "extension": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested 100k"
    if kind == 1:
        return ('{"resourceType": "Observation", "valueInteger": 1' + "0" * 5000 + "}").encode(), "5000-digit integer"
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))), "random bytes"
    if kind == 3:
        text = json.dumps(resource)
        return text[: rng.randrange(len(text))].encode(), "truncated JSON"
    if kind == 4:
        return b"NaN" if rng.random() < 0.5 else b"[1, 2, 3]", "not an object"
    if kind in (5, 6):
        return json.dumps(resource).encode(), "valid"
    for _ in range(rng.randrange(1, 4)):
        keys = list(resource)
        action = rng.randrange(4)
        if action == 0 and keys:
            resource.pop(rng.choice(keys))
        elif action == 1 and keys:
            resource[rng.choice(keys)] = _json_value(rng)
        elif action == 2:
            resource[rng.choice(["colour", "subject", "note", "id", "meta", "contained", "_status"])] = _json_value(rng)
        else:
            resource["resourceType"] = rng.choice([*REGISTRY, "Foo", 1, None, resource.get("resourceType")])
    return json.dumps(resource, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"), "mutated"


def fuzz_request(rng: random.Random) -> FuzzRequest:
    """One random request (method, target, headers and body all drawn from `rng`)."""
    method = rng.choices(
        ["GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH", "G\x00T", "BREW"], [40, 40, 4, 3, 3, 2, 2, 1, 1]
    )[0]
    resource_type = rng.choice(_TYPES)
    shape = rng.randrange(10)
    if shape < 2:
        target = "/fhir/" + rng.choice(_GOOD_SEARCHES)
    elif shape < 5:
        params = "&".join(f"{rng.choice(_PARAMS)}={rng.choice(_VALUES)}" for _ in range(rng.randrange(5)))
        target = f"/fhir/{resource_type}" + (f"?{params}" if params or rng.random() < 0.3 else "")
    elif shape == 5:
        target = f"/fhir/{resource_type}/{rng.choice(['S0000001', '1001', '99999999', '%ED%A0%80', 'x' * 200, ''])}"
    elif shape == 6:
        target = f"/fhir?_getpages={rng.choice([str(uuid.uuid4()), 'x', ''])}&_getpagesoffset={rng.choice(_VALUES)}&_count={rng.choice(_VALUES)}"
    elif shape == 7:
        target = rng.choice(
            [
                "/",
                "*",
                "/fhir",
                "/fhir/",
                "http://localhost:8080/fhir/Patient",
                "/../../etc/passwd",
                "/fhir/Patient&_format=json",
            ]
        )
    elif shape == 8:
        target = "/fhir/" + "".join(rng.choice("abc/%?&=#\x7f") for _ in range(rng.randrange(1, 60)))
    else:
        target = "/fhir/Observation?code=" + "K," * rng.randrange(1, 2000)
    headers = [("Host", rng.choice(["localhost:8080", "127.0.0.1", "", "a b", "x" * 300]))]
    if rng.random() < 0.2:
        headers.append(("X-Medbench-Namespace", rng.choice(["attempt-1", "a", "", "bad value", "x" * 70, "ü"])))
    if rng.random() < 0.02:
        headers.append(("X-Huge", "h" * 80_000))
    body, body_kind = (b"", "") if method in ("GET", "HEAD", "DELETE") and rng.random() < 0.9 else _mutated_body(rng)
    if method == "POST" and rng.random() < 0.6:
        target = f"/fhir/{body_kind and json.loads(json.dumps(rng.choice(_RESOURCES)))['resourceType']}"
        if body_kind == "valid":
            target = "/fhir/" + json.loads(body)["resourceType"]
    framing = rng.randrange(40)
    short = False
    if framing == 0 and body:
        headers.append(("Transfer-Encoding", "chunked"))
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    elif framing == 1:
        headers.append(("Transfer-Encoding", rng.choice(["chunked", "gzip", "chunked, chunked"])))
    elif framing == 2:
        headers.append(("Content-Length", rng.choice(["-1", "lots", "1e3", " 5", "99999999999999999999"])))
    elif framing == 3 and body:
        headers.append(("Content-Length", str(len(body) + rng.randrange(1, 100))))
        short = True
    elif framing == 4 and body:
        headers.append(("Content-Length", str(max(0, len(body) - rng.randrange(1, 10)))))
    elif body or method in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    summary = f"{method} {target[:80]!r} {body_kind} ({len(body)} body bytes)"
    return FuzzRequest(head.encode("utf-8", "surrogateescape") + body, summary, short)


def fuzz_requests(seed: int, count: int) -> Iterator[FuzzRequest]:
    rng = random.Random(seed)
    for _ in range(count):
        yield fuzz_request(rng)


def send(host: str, port: int, request: FuzzRequest, timeout_s: float) -> int | None:
    """The status the server answered, None when it closed without answering; raises
    TimeoutError when it did neither within `timeout_s`."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        try:
            sock.sendall(request.data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early (413, 431): its answer may still be readable
        try:
            line = sock.makefile("rb").readline(65536)
        except ConnectionResetError:
            return None
        except TimeoutError:
            raise TimeoutError(request.summary) from None
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def run_fuzz(
    host: str, port: int, seed: int = 0, count: int = 500, timeout_s: float = 15.0, clients: int = 8
) -> FuzzReport:
    """Send `count` fuzzed requests from `clients` threads and report statuses, 5xx and hangs."""
    report = FuzzReport()

    def one(request: FuzzRequest) -> tuple[FuzzRequest, int | None, bool]:
        try:
            return request, send(host, port, request, timeout_s), False
        except TimeoutError:
            return request, None, True

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for request, status, hung in pool.map(one, fuzz_requests(seed, count)):
            report.requests += 1
            if hung:
                report.hangs.append(request.summary)
            elif status is None:
                report.closed_without_answer += 1
            else:
                report.statuses[status] += 1
                if status >= 500 and not (status == 501 and b"Transfer-Encoding" in request.data):
                    report.server_errors.append(f"{status} {request.summary}")
    return report
