"""What one pytest process (controller or xdist worker) needs to run benchmark tasks.

Kept apart from the hooks so it reads top to bottom: load the task set, open the run in the
results folder, start the environment and the model, run one task attempt and record it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests

from medbench.plugin_options import Settings
from medbench.results.records import RecordKey, run_record, transcript_record
from medbench.results.resume import identity_differences, open_run
from medbench.results.writer import RunFolder
from medbench.tasks.model import Task, TaskSet, canonical_sha256


class SetupError(Exception):
    """The benchmark cannot start; the message says what to fix."""


@dataclass(frozen=True)
class Case:
    """One test: one attempt at one task."""

    task: Task
    index: int
    attempt: int
    repeats: int

    @property
    def key(self) -> RecordKey:
        return (self.task.id, self.attempt)

    @property
    def test_id(self) -> str:
        return self.task.id if self.repeats == 1 else f"{self.task.id}-attempt{self.attempt}"


@dataclass(frozen=True)
class Environment:
    """A FHIR server as the harness reaches it (real base) and as the model sees it (display base)."""

    real_base: str
    display_base: str
    fingerprint: str
    reset_writes: Callable[[], None]


class BenchRun:
    """The benchmark session as seen by one process; built lazily, only when benchmark tests are collected."""

    def __init__(self, settings: Settings, session: str, *, writes_task_file: bool = True) -> None:
        self.settings = settings
        self.session = session
        self.writes_task_file = writes_task_file
        self.folder = RunFolder(settings.run_folder)
        self.recorded: set[RecordKey] = set()
        self.opened = False

    @cached_property
    def task_set(self) -> TaskSet:
        from medbench.tasks import (
            OfficialAssetsError,
            TaskFileError,
            load_task_set,
            write_task_file,
        )

        s = self.settings
        try:
            task_set = load_task_set(s.tasks, task_seed=s.task_seed, ehr_seed=s.ehr_seed, ehr_scale=s.ehr_scale,
                                     official_dir=s.official_dir)
        except (OfficialAssetsError, TaskFileError, FileNotFoundError) as error:
            raise SetupError(str(error)) from None
        if s.write_tasks and self.writes_task_file:
            write_task_file(task_set, s.write_tasks)
        return task_set

    def cases(self) -> list[Case]:
        repeats = self.settings.repeats
        return [Case(task, index, attempt, repeats)
                for index, task in enumerate(self.task_set.tasks)
                for attempt in range(1, repeats + 1)]

    def identity(self) -> dict[str, Any]:
        return self.settings.identity(self.task_set.name, self.task_set.sha256)

    def check_resume(self) -> None:
        """Refuse --resume early (at collection, read-only) when the recorded run differs."""
        if not self.settings.resume:
            return
        manifest = self.folder.read_manifest()
        if manifest is None or self.session in manifest.get("sessions", []):
            return
        differences = identity_differences(manifest.get("identity", {}), self.identity())
        if differences:
            raise SetupError(
                f"--resume refused: {self.folder.path} holds a run with other settings ({'; '.join(differences)}). "
                "Run without --resume to start a new run (the old files are archived), or resume with the same options.")

    def open(self) -> None:
        """Start or continue the run in the results folder (once per process)."""
        if self.opened:
            return
        details = {"task_count": len(self.task_set.tasks), "tasks_spec": self.settings.tasks,
                   "endpoint": self.settings.endpoint()}
        self.recorded = open_run(self.folder, identity=self.identity(), details=details,
                                 session=self.session, resume=self.settings.resume)
        self.opened = True

    def run_case(self, case: Case, model: Any, environment: Environment, gateway: Any) -> tuple[dict[str, Any], Any]:
        """Run, grade and record one attempt; returns (runs.jsonl record, TaskOutcome)."""
        from medbench.agent.loop import LoopConfig, run_task
        from medbench.grading import grade

        s = self.settings
        environment.reset_writes()
        config = LoopConfig(max_rounds=s.max_rounds, post_mode=s.post_mode, strip_think=s.strip_think,
                            api_base=environment.display_base)
        started = time.perf_counter()
        outcome = run_task(case.task, self.task_set, model, gateway, config)
        verdict = grade(case.task, outcome, gateway, environment.display_base, mode=s.grader)
        record = run_record(index=case.index, category=case.task.category, attempt=case.attempt,
                            session=self.session, outcome=outcome, verdict=verdict,
                            elapsed_s=time.perf_counter() - started,
                            environment_fingerprint=environment.fingerprint)
        self.folder.append(record, transcript_record(record, outcome))
        return record, outcome


@contextmanager
def open_environment(settings: Settings, task_set: TaskSet) -> Iterator[Environment]:
    """The embedded server (seated with the task set, cached database) or the checked external URL."""
    if settings.fhir_url:
        yield _external_environment(settings)
        return
    from medbench.ehr.cache import ensure_database
    from medbench.ehr.seating import Seating
    from medbench.fhir import FhirServer

    # Generated tasks were drawn from the unseated population; seating would move their patients.
    seating = None if settings.tasks == "generated" else Seating.from_tasks(task_set.tasks)
    database = ensure_database(settings.ehr_seed, settings.ehr_scale, seating)
    with FhirServer(database) as server:
        yield Environment(server.base_url, settings.fhir_display_url, f"embedded:{database.name}",
                          server.reset_writes)


def _external_environment(settings: Settings) -> Environment:
    url = settings.fhir_url or ""
    if settings.post_mode == "execute":
        raise SetupError("--post-mode=execute needs the embedded server (writes are reset per task there); "
                         "an external --fhir-url cannot be reset between tasks")
    try:
        response = requests.get(url + "metadata", headers={"Accept": "application/fhir+json"}, timeout=30)
        response.raise_for_status()
        statement = response.json()
    except (requests.RequestException, ValueError) as error:
        raise SetupError(f"FHIR server at {url} is not reachable ({error}); start it (e.g. the MedAgentBench "
                         "Docker image on port 8080) or drop --fhir-url to use the embedded server") from None
    software = statement.get("software", {}) if isinstance(statement, dict) else {}
    described = {"software": software, "fhirVersion": statement.get("fhirVersion")}
    return Environment(url, settings.fhir_display_url, f"external:{canonical_sha256(described)[:16]}", lambda: None)


@contextmanager
def open_model(settings: Settings) -> Iterator[Any]:
    """The model client: the built-in local endpoint (one per process) or the configured endpoint."""
    from medbench.models.client import OpenAIChatModel

    if not settings.is_builtin:
        _check_endpoint_reachable(settings.base_url or "")
        yield OpenAIChatModel(settings.model, settings.base_url, api_key=settings.api_key,
                              extra_headers=settings.extra_headers or None,
                              temperature=settings.temperature, max_tokens=settings.max_tokens,
                              **settings.call_limits.client_kwargs())
        return
    from medbench.models.reference_server import ReferenceServer

    with ReferenceServer() as server:
        yield OpenAIChatModel(settings.model, server.base_url, api_key="reference",
                              temperature=settings.temperature, max_tokens=settings.max_tokens,
                              **settings.call_limits.client_kwargs())


def _check_endpoint_reachable(base_url: str) -> None:
    """Fail the session up front when nothing answers at the endpoint: every task would otherwise
    spend its whole retry budget on connection errors. Any HTTP answer (even 401 or 404) will do."""
    from medbench.models.preflight import probe_endpoint

    try:
        probe_endpoint(base_url)
    except requests.RequestException as error:
        raise SetupError(f"model endpoint {base_url} is not reachable ({type(error).__name__}); "
                         "check --base-url and that the server is running") from None
