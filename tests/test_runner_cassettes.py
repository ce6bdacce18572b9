"""One cassette per attempt, with attempts in flight together: recordings never mix, replays never cross.

Two attempts run in two threads against a real loopback echo server, their requests forced to
interleave by events (A, B, A, B), through the same transports the runner gives the openai SDK
(httpx) and the FHIR gateway (requests).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import requests
from werkzeug import Request, Response

from helpers.fake_http import base_url, json_response, raw_target, serving
from medbench.cassettes.attempt import CassettePlan, attempt_cassette

WAIT_S = 10


def echo_request(request: Request) -> Response:
    """Answers with the request's own path and body, so a replayed answer shows which request it was."""
    return json_response({"path": raw_target(request), "body": request.get_data().decode()})


@pytest.fixture
def echo() -> Iterator[str]:
    with serving(echo_request) as server:
        yield base_url(server).rstrip("/")


def interleaved(plan: CassettePlan, base: str, problems: dict[str, list[str]]) -> dict[str, list[str]]:
    """Attempts A and B send their requests in the order A1 B1 A2 B2, each through its own cassette."""
    turns = {
        ("A", 1): threading.Event(),
        ("B", 1): threading.Event(),
        ("A", 2): threading.Event(),
        ("B", 2): threading.Event(),
    }
    order = list(turns)
    answers: dict[str, list[str]] = {"A": [], "B": []}
    failures: list[BaseException] = []

    def attempt(name: str) -> None:
        try:
            with attempt_cassette(plan, f"task_{name}") as cassette:
                model = httpx2.Client(transport=cassette.httpx_transport())
                fhir = requests.Session()
                fhir.mount("http://", cassette.requests_adapter())
                for step in (1, 2):
                    assert turns[(name, step)].wait(WAIT_S)
                    chat = model.post(f"{base}/v1/chat/completions", json={"who": name, "step": step})
                    lab = fhir.get(f"{base}/fhir/Observation?patient={name}&step={step}")
                    answers[name].append(chat.json()["body"] + " " + lab.json()["path"])
                    following = order.index((name, step)) + 1
                    if following < len(order):
                        turns[order[following]].set()
            problems[name] = cassette.problems
        except BaseException as error:  # surfaced in the main thread
            failures.append(error)

    threads = [threading.Thread(target=attempt, args=(name,)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    turns[order[0]].set()
    for thread in threads:
        thread.join(WAIT_S)
    assert not failures, failures
    return answers


def test_concurrent_recordings_keep_each_attempts_requests_in_its_own_cassette(tmp_path: Path, echo: str) -> None:
    problems: dict[str, list[str]] = {}
    interleaved(CassettePlan(tmp_path, "once"), echo, problems)
    for name, other in (("A", "B"), ("B", "A")):
        text = (tmp_path / f"task_{name}.json").read_text()
        assert f"patient={name}" in text and f"patient={other}" not in text
        assert text.count('"uri"') == 4


def test_concurrent_replays_answer_each_attempt_from_its_own_cassette_offline(tmp_path: Path, echo: str) -> None:
    recorded = interleaved(CassettePlan(tmp_path, "once"), echo, {})
    problems: dict[str, list[str]] = {}
    offline = "http://replay.invalid"
    replayed = interleaved(CassettePlan(tmp_path, "none"), offline, problems)
    assert replayed == recorded
    assert problems == {"A": [], "B": []}


def test_a_replay_that_leaves_recorded_requests_unplayed_says_so(tmp_path: Path, echo: str) -> None:
    interleaved(CassettePlan(tmp_path, "once"), echo, {})
    with attempt_cassette(CassettePlan(tmp_path, "none"), "task_A") as cassette:
        client = httpx2.Client(transport=cassette.httpx_transport())
        client.post("http://replay.invalid/v1/chat/completions", json={"who": "A", "step": 1})
    assert cassette.problems and "3 of 4 recorded requests were never asked for" in cassette.problems[0]


def test_replay_without_the_attempts_cassette_names_the_command_that_records_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--record-mode=once"):
        with attempt_cassette(CassettePlan(tmp_path, "none"), "task_missing"):
            pass


def test_attempt_transports_share_one_verifying_tls_context() -> None:
    """Making a TLS context loads the CA bundle (tens of ms); every attempt's real transport uses
    the one made once per process, which still verifies certificates and host names."""
    import ssl

    from medbench.cassettes import attempt as attempt_cassettes

    context = attempt_cassettes._ssl_context()
    assert context is attempt_cassettes._ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
