"""The attempt pool: up to N attempts in flight, results asked for in any order, nothing run twice."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from medbench.runner.attempts import AttemptPool, AttemptResult
from medbench.runner.session import Case
from medbench.runner.watch import EndpointWatch

WAIT_S = 10  # a generous bound on event waits: a broken pool fails the test instead of hanging it


def cases(count: int) -> list[Case]:
    return [Case(f"task1_{n}", 1, n - 1, 1, 1) for n in range(1, count + 1)]


class BlockingRunner:
    """Every attempt waits at a barrier of `parties`: it only passes if that many run at the same time."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=WAIT_S)
        self.ran: list[str] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def run(self, case: Case, live: Any = None) -> AttemptResult:
        with self._lock:
            self.ran.append(case.test_id)
            self.threads.add(threading.current_thread().name)
        self.barrier.wait()
        return AttemptResult(case, {"task_id": case.task_id, "status": "completed"})


def test_concurrency_n_keeps_n_attempts_in_flight_together() -> None:
    runner = BlockingRunner(parties=4)
    pool = AttemptPool(runner, concurrency=4)  # type: ignore[arg-type]
    todo = cases(8)
    pool.submit(todo)
    results = [pool.result(case) for case in todo]
    pool.stop()
    assert [r.case.test_id for r in results] == [c.test_id for c in todo]
    assert sorted(runner.ran) == sorted(c.test_id for c in todo)
    assert len(runner.threads) == 4


def test_results_come_back_in_the_callers_order_whatever_finishes_first() -> None:
    release_first = threading.Event()

    class SecondFinishesFirst:
        def run(self, case: Case, live: Any = None) -> AttemptResult:
            if case.test_id == "task1_1":
                assert release_first.wait(WAIT_S)
            else:
                release_first.set()
            return AttemptResult(case, {"task_id": case.task_id})

    pool = AttemptPool(SecondFinishesFirst(), concurrency=2)  # type: ignore[arg-type]
    todo = cases(2)
    pool.submit(todo)
    assert [pool.result(case).case.test_id for case in todo] == ["task1_1", "task1_2"]
    pool.stop()


def test_concurrency_one_runs_each_attempt_only_when_asked_in_the_callers_thread() -> None:
    seen: list[tuple[str, str]] = []

    class Recording:
        def run(self, case: Case, live: Any = None) -> AttemptResult:
            seen.append((case.test_id, threading.current_thread().name))
            return AttemptResult(case, {})

    pool = AttemptPool(Recording(), concurrency=1)  # type: ignore[arg-type]
    todo = cases(3)
    pool.submit(todo)
    assert seen == []
    pool.result(todo[1])
    assert seen == [("task1_2", threading.current_thread().name)]


def test_a_submitted_attempt_runs_once_even_when_submitted_again() -> None:
    runner = BlockingRunner(parties=1)
    pool = AttemptPool(runner, concurrency=2)  # type: ignore[arg-type]
    todo = cases(3)
    pool.submit(todo)
    pool.submit(todo)
    for case in todo:
        pool.result(case)
    pool.stop()
    assert sorted(runner.ran) == sorted(c.test_id for c in todo)


def test_stop_cancels_attempts_not_started_and_they_then_run_on_demand() -> None:
    gate = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    class Gated:
        def run(self, case: Case, live: Any = None) -> AttemptResult:
            ran.append(case.test_id)
            started.set()
            if case.test_id == "task1_1":
                assert gate.wait(WAIT_S)
            return AttemptResult(case, {})

    pool = AttemptPool(Gated(), concurrency=2)  # type: ignore[arg-type]
    todo = cases(1)
    pool.submit(todo)
    assert started.wait(WAIT_S)
    pool.stopped = True  # what stop() sets first: nothing new is submitted
    pool.submit(cases(5)[1:])
    gate.set()
    pool.stop()
    assert ran == ["task1_1"]


def refusal(status: str = "error", code: int = 401) -> dict[str, Any]:
    return {"status": status, "error": f"ModelCallError: model call failed: HTTP {code}: Incorrect API key provided"}


@pytest.mark.parametrize("code", [401, 403, 404])
def test_the_same_refusal_on_the_first_three_attempts_stops_the_session_once(code: int) -> None:
    watch = EndpointWatch()
    assert watch.observe(refusal(code=code)) is None
    assert watch.observe(refusal(code=code)) is None
    message = watch.observe(refusal(code=code))
    assert message is not None and f"HTTP {code}" in message
    assert watch.observe(refusal(code=code)) is None


def test_one_attempt_that_is_not_a_refusal_disarms_the_watch_for_good() -> None:
    watch = EndpointWatch()
    watch.observe(refusal())
    watch.observe({"status": "completed", "error": None})
    assert [watch.observe(refusal()) for _ in range(5)] == [None] * 5


def test_rate_limits_and_server_errors_are_not_refusals() -> None:
    watch = EndpointWatch()
    errors = [
        {"status": "error", "error": "ModelCallError: model call failed after 6 retries: HTTP 429: slow down"}
    ] * 3
    assert [watch.observe(error) for error in errors] == [None, None, None]
