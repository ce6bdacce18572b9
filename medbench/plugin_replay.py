"""pytest wiring for deterministic replay: benchmark tests run inside per-task VCR cassettes.

pytest-recording owns the cassette fixture (`vcr`) and `--record-mode`; this plugin decides
whether a session records, replays or runs live, points pytest-recording at
`cassettes/<model-slug>/[<run-name>/]<task_id>.json`, and guards replays: a missing cassette,
a cassette that played nothing (the traffic went live) or one left partly unplayed (the
harness or a grader asked something else) fails the test instead of passing silently.
Loaded after `medbench.plugin` (top-level conftest.py), whose settings and run it reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from medbench import replay
from medbench.agent.status import CASSETTE_MISMATCH
from medbench.plugin import BENCH, MARKER, setup_errors_fail_tests
from medbench.plugin_options import Settings, slug
from medbench.plugin_run import (
    BenchRun,
    Environment,
    open_environment,
    open_model,
)
from medbench.secrets import Scrubber

DEFAULT_CASSETTES_DIR = "cassettes"
# Where a replay "sends" requests: VCR answers them; a host under .invalid can never resolve.
OFFLINE_HOST = "replay.invalid"


@dataclass(frozen=True)
class ReplayPlan:
    """What this session does with cassettes: `mode` None means live, without VCR."""

    folder: Path
    mode: str | None

    @property
    def replaying(self) -> bool:
        return self.mode == "none"

    @property
    def recording(self) -> bool:
        return self.mode is not None and self.mode != "none"


PLAN = pytest.StashKey[ReplayPlan]()
REFUSAL = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("medbench")
    group.addoption("--cassettes-dir", dest="medbench_cassettes_dir", default=None, metavar="DIR",
                    help="root of the VCR cassettes, one folder per model slug (default: <rootdir>/cassettes). "
                         "Existing cassettes for the model mean replay unless --record-mode or "
                         "--disable-recording says otherwise")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Decide record / replay / live once, after medbench.plugin has validated the settings."""
    settings = config.stash[BENCH].settings
    root = Path(config.getoption("medbench_cassettes_dir") or config.rootpath / DEFAULT_CASSETTES_DIR)
    folder = replay.cassette_dir(root, slug(settings.model), slug(settings.run_name) if settings.run_name else None)
    mode = replay.choose_record_mode(config.getoption("--record-mode"),
                                     bool(config.getoption("--disable-recording")), folder)
    config.stash[PLAN] = ReplayPlan(folder, mode)


def pytest_report_header(config: pytest.Config) -> str:
    plan = config.stash[PLAN]
    if plan.mode is None:
        return "medbench cassettes: none (live run)"
    action = "replaying" if plan.replaying else f"recording (--record-mode={plan.mode})"
    return f"medbench cassettes: {action} {plan.folder}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every benchmark test in a cassette; refuse cassettes recorded for other settings."""
    plan = config.stash[PLAN]
    bench_items = [item for item in items if item.get_closest_marker(MARKER)]
    if plan.mode is None or not bench_items:
        return
    bench = config.stash[BENCH]
    identity = _cassette_identity(bench)
    try:
        replay.check_manifest(plan.folder, plan.mode, identity)
    except replay.ReplayError as error:
        if not hasattr(config, "workerinput"):
            # pytest runs pytest_collection_finish even after this error; without benchmark items
            # there, medbench.plugin leaves the results folder (and the previous run) alone.
            items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
            raise pytest.UsageError(str(error)) from None
        # A usage error inside an xdist worker crashes the session; fail each test with the reason instead.
        config.stash[REFUSAL] = str(error)
        return
    if plan.recording and (plan.mode in ("all", "rewrite") or replay.read_manifest(plan.folder) is None):
        task_set = {"name": bench.task_set.name, "sha256": bench.task_set.sha256,
                    "task_count": len(bench.task_set.tasks)}
        replay.write_manifest(plan.folder, replay.build_manifest(identity, task_set))
    for item in bench_items:
        item.add_marker(pytest.mark.vcr)


def _cassette_identity(bench: Any) -> dict[str, Any]:
    """The run identity without the run name (that already picks the folder)."""
    return {key: value for key, value in bench.identity().items() if key != "run_name"}


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    replay.register(vcr)


@pytest.fixture
def vcr_config(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Matching, filtering and serialization of medbench cassettes (no record_mode: the CLI decides)."""
    settings = pytestconfig.stash[BENCH].settings
    return replay.vcr_config(Scrubber.of(settings.api_key, settings.extra_headers))


@pytest.fixture(scope="module")
def vcr_cassette_dir(pytestconfig: pytest.Config) -> str:
    """`cassettes/<model-slug>/[<run-name>/]`, instead of pytest-recording's per-module folder."""
    return str(pytestconfig.stash[PLAN].folder)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    """The task id (`task5_12`, or `task5_12-attempt2` with --repeats) for benchmark tests."""
    case = _case_of(request.node)
    if case is not None:
        return str(case.test_id)
    from pytest_recording.plugin import get_default_cassette_name

    return get_default_cassette_name(request.cls, request.node.name)


@pytest.fixture(autouse=True)
def medbench_replay_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Replay guards around a benchmark test: the cassette must exist, and be played fully."""
    refusal = request.config.stash.get(REFUSAL, None)
    if refusal is not None and _case_of(request.node) is not None:
        pytest.fail(refusal, pytrace=False)
    plan = request.config.stash[PLAN]
    if not plan.replaying or _case_of(request.node) is None or not request.node.get_closest_marker("vcr"):
        yield
        return
    cassette = request.getfixturevalue("vcr")
    if cassette is None:
        yield
        return
    path = Path(cassette.path)
    if not path.exists():
        pytest.fail(f"no cassette {path} to replay: record it with --record-mode=once "
                    "(or run live with --disable-recording)", pytrace=False)
    yield
    if dict(request.node.user_properties).get("status") == CASSETTE_MISMATCH:
        return  # already a failed test with a status naming the unrecorded request
    total, unplayed = len(cassette), replay.unplayed_interactions(cassette)
    if total and unplayed == total:
        pytest.fail(f"replay of {path} played none of its {total} recorded requests: the traffic did not go "
                    "through VCR (is vcrpy >= 9.4 installed?); the verdict is not a replay", pytrace=False)
    if unplayed:
        pytest.fail(f"replay diverged from {path}: {unplayed} of {total} recorded requests were never asked for "
                    "(a changed prompt, agent or grader); re-record with --record-mode=rewrite", pytrace=False)


@pytest.fixture(scope="session")
def medbench_environment(pytestconfig: pytest.Config, medbench_run: BenchRun) -> Iterator[Environment]:
    """Overrides medbench.plugin's fixture: a replay starts no FHIR server (no database build, no Docker)."""
    settings = medbench_run.settings
    if pytestconfig.stash[PLAN].replaying:
        yield Environment(f"http://{OFFLINE_HOST}/fhir/", settings.fhir_display_url,
                          f"replay:{pytestconfig.stash[PLAN].folder.name}", lambda: None)
        return
    with setup_errors_fail_tests(), open_environment(settings, medbench_run.task_set) as environment:
        yield environment


@pytest.fixture(scope="session")
def medbench_model(pytestconfig: pytest.Config, medbench_settings: Settings) -> Iterator[Any]:
    """Overrides medbench.plugin's fixture: a replay starts no reference server and never needs a key."""
    if not pytestconfig.stash[PLAN].replaying:
        with setup_errors_fail_tests(), open_model(medbench_settings) as model:
            yield model
        return
    from medbench.models.client import OpenAIChatModel

    s = medbench_settings
    base = "http://127.0.0.1/v1" if s.is_builtin else (s.base_url or "https://api.openai.com/v1")
    with OpenAIChatModel(s.model, _offline(base), api_key=None if s.is_builtin else s.api_key,
                         extra_headers=None if s.is_builtin else (s.extra_headers or None),
                         temperature=s.temperature, max_tokens=s.max_tokens) as model:
        yield model


def _offline(url: str) -> str:
    """The same URL path (what cassettes match on) on a host that cannot be reached."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme or "http", OFFLINE_HOST, parts.path, parts.query, ""))


def _case_of(item: Any) -> Any:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("medbench_case") if callspec is not None else None
