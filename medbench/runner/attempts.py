"""Running task attempts: one attempt from start to recorded verdict, and many of them in flight at once.

`AttemptRunner.run(case)` is the whole pipeline for one attempt -- the agent loop over the
environment, the grader, the record -- and never raises for anything the model or the endpoint
does. `AttemptPool` keeps up to N of them in flight in threads while the caller (a pytest test,
or a script) asks for results in its own order. Each attempt has its own gateway (its own
writes namespace on the embedded server) and, when cassettes are in use, its own cassette and
HTTP clients, so attempts in flight together never see each other's writes or recordings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from medbench.a2a.attempt import A2ALimits, run_a2a_task
from medbench.agent.loop import LoopConfig, run_task
from medbench.agent.tools_loop import run_tools_task
from medbench.agent.v2_loop import run_v2_task
from medbench.cassettes.attempt import CassettePlan, attempt_cassette
from medbench.environment import Environment, attempt_namespace
from medbench.grading import grade, transcript_verdicts
from medbench.grading.v2 import grade_v2
from medbench.models import call_events
from medbench.models.replicas import counting_calls
from medbench.outcomes import TaskOutcome
from medbench.results.records import run_modes, run_record, transcript_record, v2_modes
from medbench.runner.session import Case
from medbench.scrubbing import Scrubber
from medbench.tasks.task import TaskSet


@dataclass
class AttemptResult:
    """What one attempt left: its runs.jsonl record (None when it never ran) and what went wrong around it."""

    case: Case
    record: dict[str, Any] | None
    outcome: TaskOutcome | None = None
    problems: list[str] = field(default_factory=list)
    # Retry and timeout lines of its model calls (medbench.models.call_events); `events_shown` when
    # they already went to a live writer as they happened.
    call_events: list[str] = field(default_factory=list)
    events_shown: bool = False


class AttemptRunner:
    """Runs, grades and records one attempt; safe to call from many threads at once."""

    def __init__(
        self,
        *,
        session: str,
        settings: Any,
        task_set: TaskSet,
        environment: Environment,
        model: Any,
        folder: Any,
        cassettes: CassettePlan | None = None,
        gateway: Any = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.task_set = task_set
        self.environment = environment
        self.model = model
        self.folder = folder
        self.cassettes = cassettes
        self.shared_gateway = gateway
        self._tasks = {task.id: task for task in task_set.tasks}
        self.is_v2 = getattr(task_set, "benchmark", "v1") == "v2"
        # MedAgentBench v2's official task1 measures its 12 months from "now": the session's start,
        # recorded (medbench.grading.v2), so a replay reproduces its verdicts.
        anchor = getattr(settings, "v2_task1_anchor", None)
        self.run_started = datetime.fromisoformat(anchor) if anchor else session_started(session)
        # Masks the API key and extra-header values in everything this process writes.
        self.scrubber = Scrubber.of(settings.api_key, settings.extra_headers)

    def run(self, case: Case, live: Callable[[str], None] | None = None) -> AttemptResult:
        """Run one attempt; its call events are collected (and written to `live` as they happen)."""
        with call_events.collected(live) as lines:
            result = self._run(case)
        result.call_events, result.events_shown = list(lines), live is not None
        return result

    def _run(self, case: Case) -> AttemptResult:
        with ExitStack() as stack:
            cassette = None
            if self.cassettes is not None:
                try:
                    cassette = stack.enter_context(attempt_cassette(self.cassettes, case.test_id))
                except FileNotFoundError as error:
                    return AttemptResult(case, None, problems=[str(error)])
            result = self._run_recorded(case, cassette, stack)
        if cassette is not None:
            result.problems.extend(cassette.problems)
        return result

    def _run_recorded(self, case: Case, cassette: Any, stack: ExitStack) -> AttemptResult:
        s, task = self.settings, self._tasks[case.task_id]
        execute = s.post_mode == "execute"
        namespace = attempt_namespace(self.session, case.test_id) if execute else None
        model, gateway = self.model, self.shared_gateway
        if cassette is not None:
            model = _through(model, cassette)
        # An agent's attempt always gets a gateway of its own: its tool calls arrive on the MCP server's threads.
        if gateway is None or cassette is not None or namespace is not None or s.protocol == "a2a":
            gateway = stack.enter_context(
                self.environment.gateway(namespace, cassette.requests_adapter() if cassette is not None else None)
            )
        config = LoopConfig(
            max_rounds=s.max_rounds,
            post_mode=s.post_mode,
            strip_think=s.strip_think,
            api_base=self.environment.display_base,
        )
        started = time.perf_counter()
        base = self.environment.display_base
        outcome: TaskOutcome  # the tools and v2 loops return subclasses of it
        try:
            if self.is_v2:
                with counting_calls() as replica_calls:
                    outcome = run_v2_task(task, self.task_set, model, gateway, config)
                verdict = grade_v2(task, outcome, gateway, base, s.grader, run_started=self.run_started)
                compared = (
                    {
                        mode: vars(grade_v2(task, outcome, gateway, base, mode, run_started=self.run_started))
                        for mode in ("official", "corrected")
                    }
                    if s.grader == "state"
                    else None
                )
            else:
                with counting_calls() as replica_calls:
                    if s.protocol == "a2a":
                        outcome = run_a2a_task(
                            task,
                            self.task_set,
                            model,
                            gateway,
                            config,
                            A2ALimits(s.tool_call_cap, s.call_limits.timeout),
                            cassette=cassette,
                            replaying=self.cassettes is not None and self.cassettes.replaying,
                        )
                    else:
                        run = run_tools_task if s.protocol == "tools" else run_task
                        outcome = run(task, self.task_set, model, gateway, config)
                verdict = grade(task, outcome, gateway, base, mode=s.grader)
                # A state run also records the transcript graders' verdicts (agreement report, medbench.reports.agreement).
                compared = transcript_verdicts(task, outcome, gateway, base) if s.grader == "state" else None
        finally:
            if namespace is not None:
                self.environment.drop_namespace(namespace)
            if model is not self.model:
                model.close()
        record = run_record(
            index=case.index,
            category=task.category,
            attempt=case.attempt,
            session=self.session,
            outcome=outcome,
            verdict=verdict,
            elapsed_s=time.perf_counter() - started,
            environment_fingerprint=self.environment.fingerprint,
            modes={**run_modes(s), **(v2_modes(s, self.task_set, self.run_started) if self.is_v2 else {})},
        )
        if compared is not None:
            record["transcript_verdicts"] = compared
        if getattr(self.model, "replicas", None) is not None:  # which replica served the calls (replicas only)
            record.update(replica_calls.fields())
        record = self.scrubber.data(record)  # the record also becomes the pytest message and report metadata
        self.folder.append(record, self.scrubber.data(transcript_record(record, outcome)))
        return AttemptResult(case, record, outcome)


def session_started(session: str) -> datetime:
    """When a session started, from its id (`20261205T021700Z-ab12cd`); now for ids of another form."""
    try:
        return datetime.strptime(session.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)


def _through(model: Any, cassette: Any) -> Any:
    """The model client with its traffic through the attempt's cassette (stand-in models pass as they are)."""
    through = getattr(model, "through", None)
    if through is None:
        return model
    # With replicas, the cassette sees the canonical URL and sends what it does not replay to a replica.
    replicas = getattr(model, "replica_transport", lambda: None)()
    return through(cassette.httpx_transport(replicas))


class AttemptPool:
    """Up to `concurrency` attempts in flight; results are asked for one by one, in any order.

    `submit` takes the attempts this process will run, in the order it will ask for them (it
    may be called again as more become known); `result(case)` waits for one, running it now in
    the caller's thread if it was never submitted. With concurrency 1 nothing runs ahead: each
    attempt runs when its result is asked for, exactly as a serial run.
    """

    def __init__(self, runner: AttemptRunner, concurrency: int = 1) -> None:
        self.runner = runner
        self.concurrency = concurrency
        self._futures: dict[str, Future[AttemptResult]] = {}
        self._lock = threading.Lock()
        self._executor = (
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="medbench-attempt")
            if concurrency > 1
            else None
        )
        self.stopped = False

    def submit(self, cases: Iterable[Case]) -> None:
        if self._executor is None or self.stopped:
            return
        with self._lock:
            for case in cases:
                if case.test_id not in self._futures:
                    self._futures[case.test_id] = self._executor.submit(self.runner.run, case)

    def result(self, case: Case, live: Callable[[str], None] | None = None) -> AttemptResult:
        """The attempt's result; `live` gets its call events as they happen when it runs in this thread."""
        with self._lock:
            future = self._futures.pop(case.test_id, None)
        if future is None or future.cancelled():
            return self.runner.run(case, live)
        return future.result()

    def stop(self) -> None:
        """Cancel what has not started; attempts in flight finish and are recorded."""
        self.stopped = True
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
