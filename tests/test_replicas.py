"""Replicas of one model: each call goes to the least busy replica, a failing one is left out for a
while, the SDK and cassettes only ever see the first replica's URL, and each attempt counts which
replica served it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx2
import pytest

from medbench.cassettes.attempt import CassettePlan, attempt_cassette
from medbench.models.builtin.server import ReferenceServer
from medbench.models.client import OpenAIChatModel
from medbench.models.replicas import ReplicaPool, ReplicaTransport, counting_calls, replica_label
from medbench.scrubbing import Scrubber

MESSAGES = [{"role": "user", "content": "Say FINISH([]) please"}]
SECRET = "sk-replica-secret-0123456789"

pytest_plugins = ["pytester"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pick(pool: ReplicaPool) -> int:
    picked = pool.acquire()
    assert picked is not None
    return picked[0]


def test_an_idle_pool_alternates_and_a_busy_replica_is_passed_over() -> None:
    pool = ReplicaPool(["http://a/v1", "http://b/v1", "http://c/v1"])
    order = []
    for _ in range(6):
        index, replica = pool.acquire()  # type: ignore[misc]
        order.append(index)
        pool.release(replica, ok=True)
    assert order == [0, 1, 2, 0, 1, 2]
    held = [pool.acquire() for _ in range(3)]  # one call in flight on each
    assert sorted(index for index, _ in held) == [0, 1, 2]  # type: ignore[misc]
    pool.release(held[1][1], ok=True)  # type: ignore[index]
    assert pick(pool) == held[1][0]  # type: ignore[index]


def test_a_failing_replica_is_out_for_a_cool_down_then_tried_with_one_call() -> None:
    clock = Clock()
    pool = ReplicaPool(["http://a/v1", "http://b/v1"], cooldown_s=2.0, clock=clock)
    index, a = pool.acquire()  # type: ignore[misc]
    assert index == 0
    pool.release(a, ok=False)
    busy = [pool.acquire() for _ in range(3)]  # b is busy, a is out: still b
    assert [i for i, _ in busy] == [1, 1, 1]  # type: ignore[misc]
    clock.now += 2.0
    trial = pool.acquire()
    assert trial is not None and trial[0] == 0  # back: one trial call
    assert pick(pool) == 1  # no second call to a while its trial is in flight
    pool.release(trial[1], ok=False)  # failed again: out twice as long
    clock.now += 2.0
    assert pick(pool) == 1
    clock.now += 2.0
    trial = pool.acquire()
    assert trial is not None and trial[0] == 0
    pool.release(trial[1], ok=True)  # healthy again: it takes calls as any other
    assert pool.replicas[0].failures == 2 and pool.replicas[0].failures_in_a_row == 0


def test_when_every_replica_is_out_the_one_back_first_is_tried() -> None:
    clock = Clock()
    pool = ReplicaPool(["http://a/v1", "http://b/v1"], cooldown_s=2.0, clock=clock)
    a, b = pool.acquire(), pool.acquire()
    pool.release(b[1], ok=False)  # type: ignore[index]
    clock.now += 1.0
    pool.release(a[1], ok=False)  # type: ignore[index]
    assert pick(pool) == 1


def test_the_transport_rewrites_url_and_host_and_counts_the_calls_of_this_thread() -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(503 if request.url.port == 9001 else 200, json={})

    pool = ReplicaPool(["http://127.0.0.1:9000/v1", "http://127.0.0.1:9001/proxy/v1"])
    transport = ReplicaTransport(pool, "http://127.0.0.1:9000/v1", inner=httpx2.MockTransport(answer))
    client = httpx2.Client(transport=transport)
    with counting_calls() as tally:
        first = client.post("http://127.0.0.1:9000/v1/chat/completions?x=1", json={"a": 1})
        second = client.post("http://127.0.0.1:9000/v1/chat/completions?x=1", json={"a": 1})
    assert first.status_code == 200 and second.status_code == 503  # a failing answer goes back to the client
    assert str(seen[1].url) == "http://127.0.0.1:9001/proxy/v1/chat/completions?x=1"
    assert seen[1].headers["Host"] == "127.0.0.1:9001" and seen[1].content == b'{"a":1}'
    assert tally.fields() == {
        "replica_calls": {"http://127.0.0.1:9000/v1": 1},
        "replica_failures": {"http://127.0.0.1:9001/proxy/v1": 1},
    }
    assert pool.replicas[1].out_until > 0  # and the 503 replica is out for a while
    assert client.post("http://127.0.0.1:9000/v1/chat/completions", json={}).status_code == 200


def test_labels_carry_no_user_info_or_query() -> None:
    assert replica_label("http://user:pw@host:8000/v1/?key=abc") == "http://host:8000/v1"


@pytest.fixture
def two_replicas():
    with ReferenceServer(serve_as="do-nothing") as first, ReferenceServer(serve_as="do-nothing") as second:
        yield first, second


def model_across(urls: list[str]) -> OpenAIChatModel:
    return OpenAIChatModel("served", urls[0], api_key=SECRET, backoff_initial_s=0.01, backoff_max_s=0.05).across(
        ReplicaPool(urls, cooldown_s=0.5)
    )


def test_calls_in_flight_together_spread_over_both_replicas(two_replicas) -> None:
    urls = [server.base_url for server in two_replicas]
    model = model_across(urls)
    barrier = threading.Barrier(8)
    replies = []

    def call() -> None:
        barrier.wait()
        replies.append(model.complete(MESSAGES))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 8 and all(reply.content for reply in replies)
    served = [replica.served for replica in model.replicas.replicas]  # type: ignore[union-attr]
    assert sum(served) == 8 and min(served) >= 1


def test_a_replica_stopped_mid_run_loses_no_call(two_replicas) -> None:
    first, second = two_replicas
    urls = [first.base_url, second.base_url]
    model = model_across(urls)
    for _ in range(4):
        model.complete(MESSAGES)
    second.stop()  # the event: the second replica goes away after its calls
    with counting_calls() as tally:
        replies = [model.complete(MESSAGES) for _ in range(6)]
    assert all(reply.content for reply in replies)
    assert tally.served == {replica_label(urls[0]): 6}
    assert tally.failed.get(replica_label(urls[1]), 0) >= 1


def test_a_cassette_records_the_first_replicas_url_and_no_secret_whichever_replica_answered(
    two_replicas, tmp_path: Path
) -> None:
    first, second = two_replicas
    urls = [first.base_url, second.base_url]
    model = model_across(urls)
    model.replicas.replicas[0].in_flight = 1  # type: ignore[union-attr]  # the first is busy: the second answers
    plan = CassettePlan(tmp_path, "once", Scrubber.of(SECRET, {}))
    with attempt_cassette(plan, "task1_1") as cassette, counting_calls() as tally:
        recorded = model.through(cassette.httpx_transport(model.replica_transport())).complete(MESSAGES)
    assert tally.served == {replica_label(second.base_url): 1}
    text = (tmp_path / "task1_1.json").read_text()
    assert SECRET not in text
    uris = [i["request"]["uri"] for i in json.loads(text)["interactions"]]
    assert uris == [f"{urls[0]}/chat/completions"]
    # Replayed with the replicas the other way round (or none): the same answer, nothing sent.
    first.stop()
    second.stop()
    replay = CassettePlan(tmp_path, "none", Scrubber.of(SECRET, {}))
    other = model_across([urls[1], urls[0]])
    with attempt_cassette(replay, "task1_1") as cassette:
        replayed = other.through(cassette.httpx_transport(other.replica_transport())).complete(MESSAGES)
    assert replayed.content == recorded.content and not cassette.problems


def test_a_replica_named_twice_or_replicas_of_a_built_in_model_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["medbench.plugin"]\n')
    twice = pytester.runpytest_subprocess("--co", "--model=m", "--base-url=http://a:1/v1", "--base-url=http://a:1/v1")
    assert twice.ret == pytest.ExitCode.USAGE_ERROR
    twice.stderr.fnmatch_lines(["*--base-url http://a:1/v1 is given twice*"])
    builtin = pytester.runpytest_subprocess(
        "--co", "--model=reference", "--base-url=http://a:1/v1", "--base-url=http://b:1/v1"
    )
    assert builtin.ret == pytest.ExitCode.USAGE_ERROR
    builtin.stderr.fnmatch_lines(["*--model=reference is served by the built-in local endpoint*medbench.models serve*"])


def test_an_unreachable_replica_stops_the_session_naming_it(two_replicas) -> None:
    from medbench.runner.session import BenchSession
    from medbench.settings import Settings, SetupError

    reachable = two_replicas[0].base_url
    with ReferenceServer() as gone:
        unreachable = gone.base_url
    settings = Settings(model="m", base_url=reachable, base_urls=(reachable, unreachable))
    with pytest.raises(SetupError, match=f"model endpoint {unreachable} is not reachable"):
        BenchSession(settings, "s").start_model_endpoint()
