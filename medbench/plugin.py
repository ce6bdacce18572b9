"""The medbench pytest plugin: options, parametrization, fixtures, result files and CI gates.

Hooks stay thin and delegate to plain modules (plugin_options, plugin_run, medbench.results).
Under xdist, each worker loads the task set, opens the run and writes its own lines to the
shared results folder; the controller only watches test reports, and at session end builds
summary.json from the files, checks that no attempt vanished, and applies the gates.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from typing import Any

import pytest

from medbench.plugin_options import Settings, add_options, settings_from_config
from medbench.plugin_run import (
    BenchRun,
    Case,
    Environment,
    SetupError,
    open_environment,
    open_model,
)
from medbench.models import call_events
from medbench.results.gates import failed_gates
from medbench.results.records import report_properties
from medbench.results.resume import RunRefused, reruns_in_session
from medbench.results.summary import build_summary, model_calls_line, summary_table

MARKER = "medbench"
SESSION_KEY = "medbench_session"

BENCH = pytest.StashKey[BenchRun]()
RECORD = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: one attempt at one MedAgentBench task")
    for category in range(1, 11):
        config.addinivalue_line("markers", f"task{category}: MedAgentBench category {category} tasks")
    settings = settings_from_config(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        session = workerinput[SESSION_KEY]
    else:
        session = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    first_process = workerinput is None or workerinput.get("workerid") == "gw0"
    bench = config.stash[BENCH] = BenchRun(settings, session, writes_task_file=first_process)
    config.pluginmanager.register(CallEventLines(config), CallEventLines.NAME)
    if workerinput is None:
        config.pluginmanager.register(Controller(bench), "medbench-controller")
        if settings.resume:
            _refuse_mismatched_resume(bench)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker joins the controller's session, so they share one run."""
    node.workerinput[SESSION_KEY] = node.config.stash[BENCH].session


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "medbench_case" not in metafunc.fixturenames:
        return
    bench = metafunc.config.stash[BENCH]
    try:
        cases = bench.cases()
    except SetupError as error:
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    metafunc.parametrize("medbench_case", [
        pytest.param(case, id=case.test_id, marks=[getattr(pytest.mark, MARKER), getattr(pytest.mark, f"task{case.task.category}")])
        for case in cases
    ], indirect=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Open the run only when benchmark tests survived selection, so `pytest tests` leaves results alone."""
    if any(item.get_closest_marker(MARKER) for item in session.items):
        try:
            session.config.stash[BENCH].open()
        except RunRefused as error:
            if not hasattr(session.config, "workerinput"):
                raise pytest.UsageError(str(error)) from None
            session.shouldstop = str(error)  # an xdist worker stops the session through the controller


def pytest_unconfigure(config: pytest.Config) -> None:
    """Free the results folder for the next session (a killed process frees it anyway)."""
    if BENCH in config.stash:
        config.stash[BENCH].folder.session_lock.release()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """--resume: skip recorded attempts before any session fixture (server, model) starts."""
    case = _case_of(item)
    bench = item.config.stash[BENCH]
    if case is not None and item.session.shouldstop:
        pytest.skip(str(item.session.shouldstop))
    if case is not None and case.key in bench.recorded:
        pytest.skip(f"already recorded in {bench.folder.path} (--resume)")


@contextmanager
def setup_errors_fail_tests() -> Iterator[None]:
    """A SetupError names what to fix: show that one line on each test, not a traceback."""
    try:
        yield
    except SetupError as error:
        raise pytest.fail.Exception(str(error), pytrace=False) from None


@pytest.fixture(scope="session")
def medbench_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated `medbench` options of this session."""
    return pytestconfig.stash[BENCH].settings


@pytest.fixture(scope="session")
def medbench_run(pytestconfig: pytest.Config) -> BenchRun:
    """This process's view of the run: task set, results folder, recorded attempts."""
    bench = pytestconfig.stash[BENCH]
    bench.open()
    return bench


@pytest.fixture(scope="session")
def medbench_environment(medbench_run: BenchRun) -> Iterator[Environment]:
    """The FHIR environment, once per xdist worker: embedded server on a free port, or the external URL."""
    with setup_errors_fail_tests(), open_environment(medbench_run.settings, medbench_run.task_set) as environment:
        yield environment


@pytest.fixture(scope="session")
def medbench_gateway(medbench_environment: Environment) -> Iterator[Any]:
    """The harness's HTTP client to the environment, showing the model the display base URL."""
    from medbench.agent.gateway import FhirGateway

    with FhirGateway(medbench_environment.real_base, medbench_environment.display_base) as gateway:
        yield gateway


@pytest.fixture(scope="session")
def medbench_model(medbench_settings: Settings) -> Iterator[Any]:
    """The model client, once per xdist worker (the reference model gets its own local server)."""
    with setup_errors_fail_tests(), open_model(medbench_settings) as model:
        yield model


@pytest.fixture
def medbench_case(request: pytest.FixtureRequest) -> Case:
    """The task attempt this test runs (parametrized over the task set)."""
    return request.param


@pytest.fixture
def medbench_attempt(request: pytest.FixtureRequest, medbench_case: Case, medbench_run: BenchRun,
                     medbench_model: Any, medbench_environment: Environment, medbench_gateway: Any) -> dict[str, Any]:
    """Run, grade and record the attempt; the runs.jsonl record is written before the test asserts.
    Model-call retries and timeouts are printed as they happen (xdist: shipped to the controller)."""
    with request.config.pluginmanager.get_plugin(CallEventLines.NAME).attempt(request.node):
        record, _ = medbench_run.run_case(medbench_case, medbench_model, medbench_environment, medbench_gateway)
    request.node.user_properties.extend(report_properties(record))
    request.node.stash[RECORD] = dict(report_properties(record))
    return record


@pytest.hookimpl(optionalhook=True)
def pytest_json_runtest_metadata(item: pytest.Item, call: pytest.CallInfo[Any]) -> dict[str, Any]:
    """pytest-json-report: per-test metadata (status, correct, turns, tokens, latency)."""
    if call.when != "call" or RECORD not in item.stash:
        return {}
    return item.stash[RECORD]


class Controller:
    """Registered on the controller only: watches reports, then writes the summary and applies the gates."""

    def __init__(self, bench: BenchRun) -> None:
        self.bench = bench
        self.started = time.monotonic()
        self.reported: set[str] = set()
        self.failed: set[str] = set()
        self.with_verdict: set[str] = set()
        self.summary: dict[str, Any] | None = None
        self.problems: list[str] = []
        self.gate_failures: list[str] = []
        self.report_lines: list[str] = []
        self.notes: list[str] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """The workers took the results folder for this session; the controller holds it too, to the end."""
        folder = self.bench.folder
        if folder.session_lock.holder_path.exists():
            with folder.lock():
                folder.session_lock.join_if_ours(self.bench.session)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reported.add(report.nodeid)
        if report.failed:
            self.failed.add(report.nodeid)
        if any(key == "correct" for key, _ in report.user_properties):
            self.with_verdict.add(report.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        """Before other plugins (json-report) read the exit status: summary, vanished attempts, gates."""
        if self.reported and self.bench.folder.manifest_path.exists():
            self._finish(session)
        return (yield)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary is None:
            return
        summary, write = self.summary, terminalreporter.write_line
        terminalreporter.write_sep("=", "medbench summary")
        write(summary_table(summary))
        low, high = summary["accuracy_ci95"]
        status = "complete" if summary["complete"] else f"incomplete: {summary['total']} of {summary['expected_total']} attempts"
        write(f"accuracy {summary['accuracy']:.1f}% (95% CI {low:.1f}-{high:.1f}) over {summary['total']} attempts, "
              f"run {status}; results in {self.bench.folder.path}")
        repeats = summary["repeats"]
        if repeats["k"] > 1:
            k = repeats["k"]
            write(f"repeats: pass@1 {repeats.get('pass@1')}, pass@{k} {repeats.get(f'pass@{k}')}, "
                  f"pass^{k} {repeats.get(f'pass^{k}')}")
        for line in self.notes:
            write(f"medbench: {line}")
        for line in self.problems:
            write(f"medbench: {line}", red=True)
        for line in self.gate_failures:
            write(f"GATE FAILED: {line}", red=True)
        gates = self.bench.settings.gates
        if gates and not self.gate_failures:
            write("gates passed: " + ", ".join(g.describe() for g in gates), green=True)
        for line in self.report_lines:
            write(line)

    def _finish(self, session: pytest.Session) -> None:
        folder = self.bench.folder
        with folder.lock():
            manifest = folder.read_manifest()
            if manifest is None or self.bench.session not in manifest.get("sessions", []):
                return
            manifest.setdefault("session_elapsed", {})[self.bench.session] = round(time.monotonic() - self.started, 3)
            folder.write_manifest(manifest)
            records = folder.records()
            self.summary = build_summary(manifest, records)
            folder.write_summary(self.summary)
        reruns = reruns_in_session(records, self.bench.session) if self.bench.settings.resume else 0
        calls_line = model_calls_line(self.summary)
        self.notes = [calls_line] if calls_line else []
        if reruns:
            self.notes.append(f"--resume ran {reruns} attempt(s) again that had ended as error or cassette_mismatch")
        unrecorded = len(self.failed - self.with_verdict)
        if unrecorded:
            self.problems.append(f"{unrecorded} test(s) failed without a recorded verdict "
                                 "(setup error, harness error or crashed worker)")
        vanished = max(session.testscollected - len(self.reported), 0)
        if vanished and session.exitstatus == pytest.ExitCode.OK:
            self.problems.append(f"{vanished} collected test(s) never reported a result (a lost worker?); failing the session")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        gates = list(self.bench.settings.gates)
        if gates and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            self.gate_failures = failed_gates(self.summary, gates, unrecorded=unrecorded + vanished)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if self.gate_failures else pytest.ExitCode.OK
        if self.bench.settings.report:
            self.report_lines = _write_report(self.bench.settings)


def _write_report(settings: Settings) -> list[str]:
    """--report: CSVs, plots and the report page for the whole results folder; never fails the session."""
    from medbench import reports

    try:
        paths = reports.write_reports(settings.results_dir, settings.report)
    except reports.ReportError as error:
        return [f"--report skipped: {error}"]
    return [f"report: {path}" for path in paths]


def _refuse_mismatched_resume(bench: BenchRun) -> None:
    """--resume with other settings: one clear usage error before any worker starts."""
    try:
        bench.check_resume()
    except SetupError as error:
        raise pytest.UsageError(str(error)) from None


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("medbench_case") if callspec is not None else None


class CallEventLines:
    """The retry / timeout lines of an attempt's model calls (medbench.models.call_events), printed
    as they happen where this process owns the terminal; an xdist worker ships them with the test
    report (user property `medbench_call_events`) and the controller prints them."""

    NAME = "medbench-call-events"
    PROPERTY = "medbench_call_events"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")

    @contextmanager
    def attempt(self, node: pytest.Item) -> Iterator[None]:
        with call_events.collected(None if self.is_worker else self._write) as lines:
            try:
                yield
            finally:
                if lines and self.is_worker:
                    node.user_properties.append((self.PROPERTY, lines))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "setup" or self.is_worker:  # the attempt runs in the setup of its test
            return
        for key, lines in report.user_properties:
            if key == self.PROPERTY:
                for line in lines:
                    self._write(line)

    def _write(self, line: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if terminal is None:
            return
        with capture.global_and_fixture_disabled() if capture else nullcontext():  # not into the test's capture
            terminal.ensure_newline()
            if getattr(getattr(terminal, "_tw", None), "width_of_current_line", 0):  # after xdist's progress dots
                terminal.write("\n")
            terminal.write_line(f"medbench: {line}")
