"""Random and adversarial model replies, run through the real agent loop, graders and result writer.

A robustness campaign for the harness, used by the test suite (a few hundred replies) and by
`scripts/fuzz_replies.py` (10,000): a model that answers with hostile text (URLs aimed at other
services in every spelling, lone surrogates, JSON nested thousands deep, huge numbers, junk)
against a real FHIR server over HTTP, while a trap server on another loopback port and a watch
on every request `requests` sends check that nothing leaves the FHIR base. Each attempt must end
with a recorded status: a line in runs.jsonl and transcripts.jsonl that reads back as JSON.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import requests.adapters

from medbench import outcomes
from medbench.agent.loop import LoopConfig, run_task
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.grading import grade
from medbench.models.client import ModelReply, OpenAIChatModel
from medbench.results.records import run_record, transcript_record
from medbench.results.writer import RunFolder, read_jsonl
from medbench.tasks.task import TaskSet

STATUSES = frozenset(
    {
        outcomes.COMPLETED,
        outcomes.INVALID_ACTION,
        outcomes.LIMIT_REACHED,
        outcomes.CONTEXT_LIMIT,
        outcomes.ERROR,
        outcomes.CASSETTE_MISMATCH,
    }
)
SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff")
RESOURCES = ("Patient", "Observation", "MedicationRequest", "ServiceRequest", "Condition", "Procedure", "metadata")


def off_base_urls(trap: str, real_base: str) -> list[str]:
    """URLs aimed at anything but the display base, in the spellings that fool URL parsers."""
    host, port = trap.split("//", 1)[1].split("/", 1)[0].split(":")
    number = int.from_bytes(bytes(int(part) for part in host.split(".")), "big")
    return [
        f"{trap}leak",
        f"http://localhost:{port}/fhir/Patient",
        f"http://localhost:8080@{host}:{port}/fhir/Patient",
        f"http://localhost:8080:@{host}:{port}/",
        f"http://localhost:8080\\@{host}:{port}/fhir/",
        "http://localhost:8080/fhir/%2e%2e/%2e%2e/leak",
        "http://localhost:8080/fhir/..;/..;/leak",
        "http://localhost:8080/fhir/%252e%252e/leak",
        "http://localhost:8080/fhir\\..\\leak",
        f"http://localhost:8080#@{host}:{port}/",
        f"http://localhost:8080/fhir/Patient#@{host}:{port}",
        f"http://[::ffff:{host}]:{port}/",
        f"http://{number}:{port}/",
        f"http://{hex(number)}:{port}/",
        f"http://{host}.nip.io:{port}/",
        "https://localhost:8080/fhir/Patient",
        "http://localhost:80/fhir/Patient",
        "file:///etc/passwd",
        "gopher://localhost:8080/_GET",
        "ftp://localhost:8080/fhir/",
        f"{real_base}Patient",
        "http://169.254.169.254/latest/meta-data/",
        "//localhost:8080/fhir/Patient",
        f"http://LOCALHOST:{port}/FHIR/",
        "http://user:pw@localhost:8080/fhir/Patient",
        "http://localhost:8080/fhir/Patient?x=1 HTTP/1.1\r\nHost: evil\r\n\r\n",
        "http://localhost:8080/ fhir/",
    ]


def _deep(rng: random.Random) -> str:
    depth = rng.choice((50, 500, 999, 1000, 5000, 20_000))
    if rng.random() < 0.5:
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.randint(-(10**6), 10**6)
    if kind == 1:
        return rng.uniform(-5, 5)
    if kind == 2:
        return rng.choice(["S" + str(rng.randrange(10**7)), "Patient not found", "", "Zoë", "\u202e", "POST"])
    if kind == 3:
        return rng.choice([None, True, False])
    if kind == 4:
        return rng.choice(SURROGATES) + "text"
    if kind == 5:
        return "x" * rng.choice((0, 1, 100, 10_000))
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["resourceType", "subject", "code", "status", "\ud800"]): _json_value(rng, depth + 1)
        for _ in range(rng.randrange(4))
    }


def _payload_text(rng: random.Random) -> str:
    choice = rng.randrange(8)
    if choice == 0:
        return _deep(rng)
    if choice == 1:
        return '{"valueQuantity": {"value": ' + "9" * rng.choice((400, 4301, 5000)) + "}}"
    if choice == 2:
        return '{"resourceType": "Observation", "valueString": "' + rng.choice(SURROGATES) + '"}'
    if choice == 3:
        return '{"resourceType": "Observation", "valueString": "\\ud800"}'
    if choice == 4:
        return '{"resourceType": "Observation", "subject": true} trailing text'
    if choice == 5:
        return "{not json"
    if choice == 6:
        return json.dumps(
            {
                "resourceType": rng.choice(RESOURCES[:-1]),
                "subject": {"reference": "Patient/S1"},
                "extra": _json_value(rng),
            },
            ensure_ascii=rng.random() < 0.5,
        )
    return json.dumps(_json_value(rng))


def hostile_reply(rng: random.Random, off_base: list[str], display_base: str = DEFAULT_DISPLAY_BASE) -> str:
    """One reply a broken or malicious model might send."""
    choice = rng.randrange(14)
    if choice == 0:
        query = f"patient=S{rng.randrange(10**7)}&code=K&_count={rng.randrange(-2, 100)}"
        text = f"GET {display_base}{rng.choice(RESOURCES)}?{query}"
    elif choice in (1, 2):
        text = "GET " + rng.choice(off_base)
    elif choice == 3:
        text = f"POST {display_base}{rng.choice(RESOURCES[:-1])}\n{_payload_text(rng)}"
    elif choice == 4:
        text = f"POST {rng.choice(off_base)}\n{_payload_text(rng)}"
    elif choice == 5:
        text = f"FINISH({json.dumps(_json_value(rng), ensure_ascii=rng.random() < 0.5)})"
    elif choice == 6:
        text = f"FINISH({_deep(rng)})"
    elif choice == 7:
        text = "FINISH([" + "9" * rng.choice((4301, 5000, 100_000)) + "])"
    elif choice == 8:
        text = rng.choice(
            [
                "FINISH(",
                "FINISH()",
                "FINISH([NaN, Infinity, -Infinity])",
                'FINISH(["\\ud800"])',
                "FINISH([1e400])",
                "FINISH(" + "\x00" * 10 + ")",
            ]
        )
    elif choice == 9:
        text = rng.choice(["", " ", "\n\n", "```", "```tool_code\n```", "<think>", "</think>", "GET", "POST", "FINISH"])
    elif choice == 10:
        text = "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(1, 200)))
    elif choice == 11:
        text = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))).decode("latin-1")
    elif choice == 12:
        text = "```tool_code\n" + hostile_reply(rng, off_base, display_base) + "\n```"
    else:
        text = "<think>" + "I will POST " * rng.randrange(3) + "</think>" + hostile_reply(rng, off_base, display_base)
    if rng.random() < 0.15:
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(SURROGATES) + text[at:]
    return text


class FuzzModel:
    """A ChatModel answering from ``hostile_reply``; counts the replies it gave."""

    def __init__(self, replies: Callable[[], str]) -> None:
        self.replies = replies
        self.calls = 0

    def complete(self, messages: list[dict[str, str]]) -> ModelReply:
        self.calls += 1
        return ModelReply(content=self.replies(), prompt_tokens=None, completion_tokens=None, latency_s=0.0, retries=0)


@contextmanager
def fuzz_endpoint(replies: Callable[[], str]) -> Iterator[str]:
    """An OpenAI-compatible endpoint answering from ``replies``; JSON-escaped, so lone surrogates travel
    as `\\ud800` (valid JSON text), the way a real endpoint sends them."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(
                {
                    "id": "fuzz",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "fuzz",
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": replies()}}
                    ],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    with _serving(Handler) as base:
        yield base + "v1"


class _Trap(BaseHTTPRequestHandler):
    """Another service on the host: any request reaching it is an off-base request."""

    hits: list[str] = []

    def _hit(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"leak")

    do_GET = do_POST = do_PUT = do_DELETE = _hit

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _watch_requests(sent: list[str]) -> Iterator[None]:
    """Every URL `requests` sends in this process (the gateway's and the graders'), as sent."""
    original = requests.adapters.HTTPAdapter.send

    def send(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(request.url)
        return original(adapter, request, *args, **kwargs)

    with mock.patch.object(requests.adapters.HTTPAdapter, "send", send):
        yield


@dataclass
class Figures:
    """What a campaign found; everything but ``replies``, ``attempts`` and ``statuses`` should be 0."""

    replies: int = 0
    attempts: int = 0
    crashes: int = 0
    unrecorded_attempts: int = 0
    off_base_requests: int = 0
    refused_requests: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


def run_campaign(
    replies: int,
    fhir_base: str,
    task_set: TaskSet,
    *,
    seed: int = 0,
    via_endpoint: bool = False,
    results_dir: Path | None = None,
) -> Figures:
    """Feed at least ``replies`` hostile replies through loop, graders and writer against ``fhir_base``.

    Post mode and grader mode alternate at random. With ``via_endpoint`` the replies come over
    HTTP through the real openai SDK and ``OpenAIChatModel``; otherwise from an in-process model.
    """
    rng = random.Random(seed)
    figures = Figures()
    sent: list[str] = []
    started = time.monotonic()
    with (
        _serving(_Trap) as trap,
        _watch_requests(sent),
        FhirGateway(fhir_base) as gateway,
        tempfile.TemporaryDirectory() as scratch,
    ):
        _Trap.hits = []
        off_base = off_base_urls(trap, fhir_base)
        counter = FuzzModel(lambda: hostile_reply(rng, off_base))
        folder = RunFolder((results_dir or Path(scratch)) / "fuzz")
        reader: Any = gateway  # graders read through the same gateway (their Protocol has read-only fields)
        with _model(counter, via_endpoint) as model:
            while counter.calls < replies:
                task = rng.choice(task_set.tasks)
                config = LoopConfig(max_rounds=rng.choice((1, 3, 8)), post_mode=rng.choice(("official", "execute")))
                figures.attempts += 1
                try:
                    outcome = run_task(task, task_set, model, gateway, config)
                    verdict = grade(task, outcome, reader, config.api_base, mode=rng.choice(("official", "corrected")))
                    record = run_record(
                        index=0,
                        category=task.category,
                        attempt=figures.attempts,
                        session="fuzz",
                        outcome=outcome,
                        verdict=verdict,
                        elapsed_s=0.0,
                        environment_fingerprint="fuzz",
                    )
                    folder.append(record, transcript_record(record, outcome))
                    figures.statuses[outcome.status] = figures.statuses.get(outcome.status, 0) + 1
                    figures.refused_requests += getattr(outcome, "refused_requests", 0)
                    if outcome.status not in STATUSES:
                        raise AssertionError(f"unknown status {outcome.status!r}")
                except Exception as error:  # noqa: BLE001 - a crash is what the campaign counts
                    figures.crashes += 1
                    if len(figures.examples) < 5:
                        figures.examples.append(f"{task.id}: {type(error).__name__}: {str(error)[:300]}")
        figures.replies = counter.calls
        recorded = {(r["task_id"], r["attempt"]) for r in read_jsonl(folder.runs_path)}
        transcripts = {t["transcript_id"] for t in read_jsonl(folder.transcripts_path)}
        figures.unrecorded_attempts = figures.attempts - min(len(recorded), len(transcripts))
        off = [url for url in sent if not url.startswith(fhir_base)] + [f"trap: {hit}" for hit in _Trap.hits]
        figures.off_base_requests = len(off)
        figures.examples += off[:5]
    figures.seconds = round(time.monotonic() - started, 2)
    return figures


@contextmanager
def _model(counter: FuzzModel, via_endpoint: bool) -> Iterator[Any]:
    if not via_endpoint:
        yield counter
        return

    def reply() -> str:
        counter.calls += 1
        return counter.replies()

    with fuzz_endpoint(reply) as base, OpenAIChatModel("fuzz", base, api_key="fuzz-key", max_retries=0) as model:
        yield model
