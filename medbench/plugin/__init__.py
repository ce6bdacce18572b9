"""The medbench pytest plugin: thin wiring over `medbench.runner` (options, tests, fixtures, reports, gates).

One process owns the session -- the plain pytest process, or the xdist controller. It loads the
task set once (workers receive it), and once benchmark tests are collected it starts the
environment and the model endpoint once and opens the results folder; a setup failure stops the
session with its one message. Workers join that session and keep up to `--concurrency` attempts
in flight each (`medbench.runner.attempts.AttemptPool`), while pytest still reports one test per
attempt. At the end the owner builds summary.json from the files and applies the gates.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomllib

# Loaded through its entry point, this plugin may be imported before pytest-recording, which marks
# vcr.matchers for assertion rewriting; marking it here first, before vcr is imported below, keeps
# pytest from warning "Module already imported so cannot be rewritten" in every session.
pytest.register_assert_rewrite("vcr.matchers")

from medbench.cassettes import files as cassette_files
from medbench.cassettes.attempt import CassettePlan
from medbench.package_data import data_file
from medbench.plugin import recording, xdist
from medbench.plugin.controller import Controller
from medbench.plugin.options import add_options, option_notes, settings_from_config
from medbench.plugin.terminal import CallEventLines, build_progress
from medbench.results.records import report_properties
from medbench.runner import new_session_id
from medbench.runner.attempts import AttemptPool, AttemptRunner
from medbench.runner.session import BenchSession, Case, SessionHandoff, task_set_from_json, task_set_to_json
from medbench.runner.watch import EndpointWatch
from medbench.settings import Settings, SetupError
from medbench.tasks.task import CATEGORIES

MARKER = "medbench"
MODELS_FILE = data_file("models.toml")
SESSION_KEY = "medbench_session"
TASK_SET_KEY = "medbench_task_set"
HANDOFF_KEY = "medbench_handoff"

STATE = pytest.StashKey["PluginState"]()
RECORD = pytest.StashKey[dict[str, Any]]()


class PluginState:
    """What the plugin keeps for one pytest process."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        workerinput = xdist.worker_input(config)
        self.is_worker = xdist.is_worker(config)
        task_set = task_set_from_json(workerinput[TASK_SET_KEY]) if TASK_SET_KEY in workerinput else None
        self.bench = BenchSession(settings, workerinput.get(SESSION_KEY) or new_session_id(), task_set)
        self.plan = recording.cassette_plan(config, settings)
        self.handoff_dir = Path(workerinput[HANDOFF_KEY]) if HANDOFF_KEY in workerinput else None
        self.refusal: str | None = None
        self.plan_settled = False
        self.plan_note: str | None = None  # why the cassette plan differs from the folder's first guess
        self.setup_error: str | None = None  # the task set could not be loaded (said once, exit 4)
        self.pool: AttemptPool | None = None
        self.watch = EndpointWatch()
        self.run_started: float | None = None

    @property
    def settings(self) -> Settings:
        return self.bench.settings


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    recording.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: one attempt at one MedAgentBench task")
    labels = _category_labels()
    for category in CATEGORIES:
        label = labels.get(f"task{category}", f"category {category}")
        config.addinivalue_line("markers", f"task{category}: MedAgentBench task{category} tasks ({label})")
    state = config.stash[STATE] = PluginState(config, settings_from_config(config))
    config.pluginmanager.register(CallEventLines(config), CallEventLines.NAME)
    if not state.is_worker:
        config.pluginmanager.register(Controller(state), "medbench-controller")
        if state.settings.resume:
            _or_usage_error(state.bench.check_resume)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker joins this session and receives the task set instead of regenerating it."""
    state = node.config.stash[STATE]
    if state.handoff_dir is None:
        state.handoff_dir = Path(tempfile.mkdtemp(prefix="medbench-session-"))
    node.workerinput[SESSION_KEY] = state.bench.session
    node.workerinput[HANDOFF_KEY] = str(state.handoff_dir)
    node.workerinput[TASK_SET_KEY] = task_set_to_json(_or_usage_error(lambda: state.bench.task_set))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With --concurrency > 1, workers get all their tests at once (see medbench.plugin.xdist)."""
    if config.stash[STATE].settings.concurrency > 1:
        return xdist.UpfrontScheduling(config, log)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "medbench_case" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    try:
        cases = state.bench.cases()
    except SetupError as error:
        # Raised here, inside a module's collection, any error becomes a "collection error" with a
        # traceback; pytest_collection_modifyitems says it once instead, as a usage error (exit 4).
        state.setup_error = str(error)
        cases = []
    metafunc.parametrize(
        "medbench_case",
        [
            pytest.param(
                case,
                id=case.test_id,
                marks=[getattr(pytest.mark, MARKER), getattr(pytest.mark, f"task{case.category}")],
            )
            for case in cases
        ],
        indirect=True,
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--task-id keeps exactly the named tasks; cassettes recorded for other settings are refused."""
    state = config.stash[STATE]
    if state.setup_error is not None:
        items[:] = [item for item in items if _case_of(item) is None and "medbench_case" not in item.fixturenames]
        raise pytest.UsageError(f"medbench: {state.setup_error}")
    if state.settings.task_ids:
        _select_task_ids(config, items, state.settings.task_ids)
    if not any(item.get_closest_marker(MARKER) for item in items):
        return
    _settle_plan(config, state)
    if state.plan is None:
        return
    bench = state.bench
    task_set = {"name": bench.task_set.name, "sha256": bench.task_set.sha256, "task_count": len(bench.task_set.tasks)}
    try:
        recording.check_and_mark(state.plan, bench.identity(), task_set)
    except cassette_files.ReplayError as error:
        if not state.is_worker:
            # pytest runs pytest_collection_finish even after this error; without benchmark items
            # there, the results folder (and the previous run) is left alone.
            items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
            raise pytest.UsageError(str(error)) from None
        state.refusal = str(error)  # a usage error inside a worker crashes xdist: fail each test instead


def _select_task_ids(config: pytest.Config, items: list[pytest.Item], task_ids: tuple[str, ...]) -> None:
    """Exact selection by task id (`-k` matches substrings: `task1_1` also selects task1_10..task1_19)."""
    known = {task.id for task in config.stash[STATE].bench.task_set.tasks}  # every task, whichever shard runs it
    unknown = sorted(set(task_ids) - known)
    if unknown:
        raise pytest.UsageError(
            f"--task-id: no task {', '.join(unknown)} in this task set (ids look like task1_1 .. task10_30)"
        )
    kept, dropped = [], []
    for item in items:
        case = _case_of(item)
        (dropped if case is not None and case.task_id not in task_ids else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """--resume in a plain run: know the recorded attempts before the first test (the folder opens later)."""
    state = session.config.stash[STATE]
    if not state.is_worker and any(item.get_closest_marker(MARKER) for item in session.items):
        _announce(session.config, state)
        state.bench.preview_recorded()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist controller: start the one environment and model endpoint before any test is sent to a worker."""
    state = node.config.stash[STATE]
    if state.bench.started or state.refusal or not _has_benchmark_ids(state, ids):
        return
    _settle_plan(node.config, state)
    _announce(node.config, state)
    _start(node.config, state)
    assert state.handoff_dir is not None
    (state.handoff_dir / "handoff.json").write_text(state.bench.handoff().to_text(), encoding="utf-8")


def _settle_plan(config: pytest.Config, state: PluginState) -> None:
    """Replay chosen only by the presence of cassettes: a matching sub-folder, or live for a built-in model."""
    if state.plan_settled:
        return
    state.plan_settled = True
    state.plan, state.plan_note = recording.settle_default_plan(
        config, state.settings, state.plan, state.bench.identity()
    )


def _announce(config: pytest.Config, state: PluginState) -> None:
    """One line saying whether this benchmark session records, replays or runs live (only when it runs tasks),
    and a warning for each option that is accepted but ignored or probably mistyped."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(recording.describe(state.plan))
        if state.plan_note:
            reporter.write_line(f"medbench: {state.plan_note}")
        for note in option_notes(config):
            reporter.write_line(f"medbench: warning: {note}", yellow=True)


def _has_benchmark_ids(state: PluginState, ids: list[str]) -> bool:
    wanted = {f"[{case.test_id}]" for case in state.bench.cases()}
    return any(nodeid[nodeid.rfind("[") :] in wanted for nodeid in ids if "[" in nodeid)


def _start(config: pytest.Config, state: PluginState) -> None:
    """xdist controller: set the whole session up once; a failure ends it with its one message."""
    bench = state.bench
    progress = build_progress(config, bench.settings)
    try:
        _or_exit(
            lambda: bench.start(
                environment=_replay_environment(state), start_model=not _replaying(state), progress=progress
            )
        )
    finally:
        progress.finish()
    state.run_started = time.monotonic()


def _replaying(state: PluginState) -> bool:
    return state.plan is not None and state.plan.replaying


def _replay_environment(state: PluginState) -> Any:
    return (
        recording.offline_environment(state.plan, state.settings)
        if state.plan is not None and _replaying(state)
        else None
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """--resume: skip recorded attempts before any attempt starts."""
    case = _case_of(item)
    if case is None:
        return
    state = item.config.stash[STATE]
    if state.refusal is not None:
        pytest.fail(state.refusal, pytrace=False)
    _join(item.config, state)
    if case.key in state.bench.recorded:
        pytest.skip(f"already recorded in {state.bench.folder.path} (--resume)")


def _join(config: pytest.Config, state: PluginState) -> None:
    """An xdist worker joins the session its controller started (read once, at its first benchmark test)."""
    if state.bench.started or not state.is_worker:
        return
    assert state.handoff_dir is not None
    path = state.handoff_dir / "handoff.json"
    if not path.exists():
        pytest.fail("the controller did not start the medbench session (see its message above)", pytrace=False)
    state.bench.join(SessionHandoff.from_text(path.read_text(encoding="utf-8")))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if state.pool is not None:
        state.pool.stop()
    if not state.is_worker:
        state.bench.close()
        if state.handoff_dir is not None:
            shutil.rmtree(state.handoff_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def medbench_settings(pytestconfig: pytest.Config) -> Settings:
    """The validated `medbench` options of this session."""
    return pytestconfig.stash[STATE].settings


@pytest.fixture(scope="session")
def medbench_run(pytestconfig: pytest.Config) -> BenchSession:
    """This process's view of the run: task set, results folder, recorded attempts, environment."""
    state = pytestconfig.stash[STATE]
    if state.is_worker:
        _join(pytestconfig, state)
    return state.bench


@pytest.fixture(scope="session")
def medbench_cassettes(pytestconfig: pytest.Config) -> CassettePlan | None:
    """The one live-or-replay decision: None runs live, else each attempt gets its own cassette."""
    return pytestconfig.stash[STATE].plan


@pytest.fixture(scope="session")
def medbench_environment(pytestconfig: pytest.Config, medbench_run: BenchSession) -> Any:
    """The FHIR environment of the session (started once, by the plain process or the xdist controller)."""
    state = pytestconfig.stash[STATE]
    progress = build_progress(pytestconfig, medbench_run.settings)
    try:
        return _or_exit(lambda: medbench_run.start_environment(_replay_environment(state), progress))
    finally:
        progress.finish()


@pytest.fixture(scope="session")
def medbench_gateway(medbench_environment: Any) -> Iterator[Any]:
    """A shared gateway for attempts that need no namespace and no cassette."""
    with medbench_environment.gateway() as gateway:
        yield gateway


@pytest.fixture(scope="session")
def medbench_model(medbench_run: BenchSession, medbench_cassettes: CassettePlan | None) -> Iterator[Any]:
    """The model client of this process; a replay never needs the endpoint or a key."""
    if medbench_cassettes is not None and medbench_cassettes.replaying:
        model = recording.offline_model(medbench_run.settings)
    else:
        _or_exit(medbench_run.start_model_endpoint)
        model = _or_exit(medbench_run.open_model)
    with model:
        yield model


@pytest.fixture(scope="session")
def medbench_pool(
    request: pytest.FixtureRequest,
    medbench_run: BenchSession,
    medbench_model: Any,
    medbench_environment: Any,
    medbench_gateway: Any,
    medbench_cassettes: CassettePlan | None,
) -> Iterator[AttemptPool]:
    """Runs this process's attempts, up to --concurrency in flight."""
    state = request.config.stash[STATE]
    _or_exit(medbench_run.open_folder)  # last: a failed setup leaves the previous run's files alone
    if state.run_started is None:
        state.run_started = time.monotonic()
    runner = AttemptRunner(
        session=medbench_run.session,
        settings=medbench_run.settings,
        task_set=medbench_run.task_set,
        environment=medbench_environment,
        model=medbench_model,
        folder=medbench_run.folder,
        cassettes=medbench_cassettes,
        gateway=medbench_gateway,
    )
    state.pool = AttemptPool(runner, medbench_run.settings.concurrency)
    yield state.pool
    state.pool.stop()


@pytest.fixture
def medbench_case(request: pytest.FixtureRequest) -> Case:
    """The task attempt this test runs (parametrized over the task set)."""
    return request.param


@pytest.fixture
def medbench_attempt(request: pytest.FixtureRequest, medbench_case: Case, medbench_pool: AttemptPool) -> dict[str, Any]:
    """The attempt's runs.jsonl record, written before the test asserts (run ahead with --concurrency)."""
    state = request.config.stash[STATE]
    medbench_pool.submit(_upcoming_cases(request, state))
    events = request.config.pluginmanager.get_plugin(CallEventLines.NAME)
    result = medbench_pool.result(medbench_case, events.live)
    events.attempt_ended(request.node, result)
    if result.record is not None:
        request.node.user_properties.extend(report_properties(result.record))
        request.node.stash[RECORD] = dict(report_properties(result.record))
        stop = state.watch.observe(result.record)
        if stop is not None:
            request.session.shouldstop = stop
            medbench_pool.stop()
    if result.problems:
        pytest.fail("; ".join(result.problems), pytrace=False)
    assert result.record is not None
    return result.record


def _upcoming_cases(request: pytest.FixtureRequest, state: PluginState) -> list[Case]:
    """The attempts this process will run next, in order: from xdist's queue, or the rest of session.items."""
    if state.pool is None or state.pool.concurrency <= 1:
        return []
    items = request.session.items
    if state.is_worker:
        upcoming = [items[index] for index in xdist.queued_indices(request.config)]
    else:
        position = items.index(request.node) if request.node in items else 0
        upcoming = items[position + 1 :]
    cases = [_case_of(item) for item in upcoming]
    return [case for case in cases if case is not None and case.key not in state.bench.recorded]


@pytest.hookimpl(optionalhook=True)
def pytest_json_runtest_metadata(item: pytest.Item, call: pytest.CallInfo[Any]) -> dict[str, Any]:
    """pytest-json-report: per-test metadata (status, correct, turns, tokens, latency)."""
    if call.when != "call" or RECORD not in item.stash:
        return {}
    return item.stash[RECORD]


def _or_usage_error(action: Any) -> Any:
    """Run a setup step before any test runs; its failure is one usage error naming the fix (exit 4)."""
    try:
        return action()
    except SetupError as error:
        raise pytest.UsageError(f"medbench: {error}") from None


def _or_exit(action: Any) -> Any:
    """Run a setup step; its failure stops the whole session with the one message naming the fix."""
    try:
        return action()
    except SetupError as error:
        pytest.exit(f"medbench: {error}", returncode=pytest.ExitCode.USAGE_ERROR)


def _category_labels() -> dict[str, str]:
    """The category labels of medbench/data/models.toml: the one list the markers and the reports share."""
    try:
        with MODELS_FILE.open("rb") as stream:
            return dict(tomllib.load(stream).get("tasks", {}))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _case_of(item: Any) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("medbench_case") if callspec is not None else None


__all__ = ["MARKER", "Controller", "PluginState"]
