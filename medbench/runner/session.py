"""A benchmark session without pytest: task set -> environment -> model endpoint -> results folder.

`BenchSession` is what one process knows about the run. The process that owns the session
(a plain run, or the xdist controller) calls `start()`: it loads the task set, starts the
environment and the model endpoint once, and only then opens the results folder, so a setup
failure leaves the previous run's files where they were. xdist workers get the same session
from `SessionHandoff` (plain JSON) instead of starting anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import requests

from medbench import sharding
from medbench.environment import Environment
from medbench.results.folder_lock import RunRefused
from medbench.results.records import RecordKey
from medbench.results.resume import identity_differences, open_run, recorded_attempts
from medbench.results.writer import RunFolder
from medbench.settings import Settings, SetupError, builtin_model_hint
from medbench.tasks.task import Task, TaskSet

BUILTIN_API_KEY = "reference"


@dataclass(frozen=True)
class Case:
    """One test: one attempt at one task."""

    task_id: str
    category: int
    index: int
    attempt: int
    repeats: int

    @property
    def key(self) -> RecordKey:
        return (self.task_id, self.attempt)

    @property
    def test_id(self) -> str:
        return self.task_id if self.repeats == 1 else f"{self.task_id}-attempt{self.attempt}"


def load_task_set(settings: Settings, population: Any = None) -> TaskSet:
    """Resolve `--tasks` (and write `--write-tasks`); every failure is a SetupError naming the fix.

    The generated set is drawn from `population` (the unseated synthetic EHR of the settings)."""
    from medbench.tasks import OfficialAssetsError, TaskFileError, write_task_file
    from medbench.tasks import load_task_set as load

    s = settings
    try:
        task_set = load(
            s.tasks,
            task_seed=s.task_seed,
            population=population,
            official_dir=s.official_dir,
            ehr_seed=s.ehr_seed,
            ehr_scale=s.ehr_scale,
        )
    except (OfficialAssetsError, TaskFileError, FileNotFoundError) as error:
        raise SetupError(str(error)) from None
    if s.write_tasks:
        write_task_file(task_set, s.write_tasks)
    return task_set


def task_set_to_json(task_set: TaskSet) -> dict[str, Any]:
    return {
        "name": task_set.name,
        "flavour": task_set.flavour,
        "benchmark": task_set.benchmark,
        "prompt_template": task_set.prompt_template,
        "functions": task_set.functions,
        "tasks": [{**task.to_json(), "category": task.category} for task in task_set.tasks],
    }


def task_set_from_json(data: dict[str, Any]) -> TaskSet:
    tasks = tuple(
        Task(
            id=t["id"],
            category=t["category"],
            instruction=t["instruction"],
            context=t["context"],
            eval_MRN=t.get("eval_MRN"),
            sol=t.get("sol"),
        )
        for t in data["tasks"]
    )
    return TaskSet(
        name=data["name"],
        tasks=tasks,
        prompt_template=data["prompt_template"],
        functions=data["functions"],
        flavour=data["flavour"],
        benchmark=data.get("benchmark", "v1"),
    )


@dataclass
class SessionHandoff:
    """What the owner of a session hands to xdist workers once setup succeeded (no secrets)."""

    environment: dict[str, Any]
    builtin_model_url: str | None
    recorded: list[list[Any]] = field(default_factory=list)

    def to_text(self) -> str:
        return json.dumps(
            {"environment": self.environment, "builtin_model_url": self.builtin_model_url, "recorded": self.recorded}
        )

    @classmethod
    def from_text(cls, text: str) -> SessionHandoff:
        return cls(**json.loads(text))


class BenchSession:
    """The run as one process sees it: settings, task set, results folder, environment, model endpoint."""

    def __init__(self, settings: Settings, session: str, task_set: TaskSet | None = None) -> None:
        self.settings = settings
        self.session = session
        self._task_set = task_set
        self.folder = RunFolder(settings.run_folder)
        self.recorded: set[RecordKey] = set()
        self.environment: Environment | None = None
        self.builtin_model_url: str | None = None
        self.setup_seconds: float | None = None
        self.started = False
        self._model_ready = False
        self._setup_began: float | None = None
        self._population: Any = None
        self._shard_cases: list[Case] | None = None
        self._resources = ExitStack()

    @property
    def task_set(self) -> TaskSet:
        if self._task_set is None:
            if self.settings.tasks == "generated":
                from medbench.tasks import write_task_file
                from medbench.tasks.generated_cache import load_generated_task_set

                # From the cache when it holds these tasks; otherwise drawn from a population that is
                # kept, as the embedded database is then built from it (built once, not twice).
                s = self.settings
                self._task_set, self._population = load_generated_task_set(s.ehr_seed, s.ehr_scale, s.task_seed)
                if s.write_tasks:
                    write_task_file(self._task_set, s.write_tasks)
            else:
                self._task_set = load_task_set(self.settings)
        return self._task_set

    def cases(self) -> list[Case]:
        """The attempts this session runs: the whole task set times the repeats, or one shard's slice of
        the selection (with --shard)."""
        if self.settings.shard is None:
            return self.all_cases()
        if self._shard_cases is None:
            self._shard_cases = sharding.shard_slice(self.selection(), self.settings.shard)
        return list(self._shard_cases)

    def all_cases(self) -> list[Case]:
        repeats = self.settings.repeats
        return [
            Case(task.id, task.category, index, attempt, repeats)
            for index, task in enumerate(self.task_set.tasks)
            for attempt in range(1, repeats + 1)
        ]

    def selection(self) -> list[Case]:
        """The selected attempts shards are cut from: the task set (or the --task-id tasks) times the repeats."""
        wanted = set(self.settings.task_ids)
        return [case for case in self.all_cases() if not wanted or case.task_id in wanted]

    def selection_record(self) -> dict[str, Any]:
        """What run.json keeps of the selection (the same in every shard of one run)."""
        return sharding.selection_record(self.task_set.sha256, self.settings.repeats, self.selection())

    def identity(self) -> dict[str, Any]:
        identity = self.settings.identity(self.task_set.name, self.task_set.sha256)
        if not self.settings.fhir_url:
            if self.task_set.benchmark == "v2":
                # Imported here: the v2 charts module is heavy and a v1 run (or replay) needs none of it.
                from medbench.ehr.v2.seating import v2_embedded_seating, v2_seating_label

                seating = v2_seating_label(v2_embedded_seating(self.settings.tasks, self.task_set.tasks))
            else:
                from medbench.ehr.seating import embedded_seating, seating_label

                seating = seating_label(embedded_seating(self.settings.tasks, self.task_set.tasks))
            if seating != "none":  # unseated runs keep the identity they always had (shipped cassettes)
                identity["environment"]["seating"] = seating
        if getattr(self.task_set, "benchmark", "v1") == "v2":
            from medbench.results.records import v2_modes

            # What a v2 run decided (protocol, creates, prompt, seating); the session-specific
            # task1 anchor stays on each runs.jsonl line, so --resume can continue the run.
            identity["v2_modes"] = {
                k: v for k, v in v2_modes(self.settings, self.task_set, None).items() if k != "v2_task1_anchor"
            }
        if self.settings.shard is not None:  # only shards carry it: unsharded identities are unchanged
            identity["shard"] = {**self.settings.shard.to_json(), "selection_sha256": self.selection_record()["sha256"]}
        return identity

    def check_resume(self) -> None:
        """Refuse --resume early (read-only) when the recorded run differs."""
        if not self.settings.resume:
            return
        manifest = self.folder.read_manifest()
        if manifest is None or self.session in manifest.get("sessions", []):
            return
        differences = identity_differences(manifest.get("identity", {}), self.identity())
        if differences:
            raise SetupError(
                f"--resume refused: {self.folder.path} holds a run with other settings ({'; '.join(differences)}). "
                "Run without --resume to start a new run (the old files are archived), or resume with the same options."
            )

    def start(
        self,
        *,
        environment: Environment | None = None,
        start_model: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Set the whole session up: environment and model endpoint first, the results folder last.

        `environment` given (a replay) means no server is started here."""
        if self.started:
            return
        try:
            self.start_environment(environment, progress)
            if start_model:
                self.start_model_endpoint()
            self.open_folder()
        except BaseException:
            self._resources.close()
            raise

    def start_environment(
        self, environment: Environment | None = None, progress: Callable[[int], None] | None = None
    ) -> Environment:
        """The embedded server (built once, then cached) or the checked external URL; once per session."""
        if self.environment is None:
            self._clock()
            if (problem := self.settings.mode_problem()) is not None:
                raise SetupError(problem)
            self.check_resume()
            if environment is None:
                from medbench.environment.provision import open_environment

                environment = self._resources.enter_context(
                    open_environment(self.settings, self.task_set, progress, population=self._population)
                )
            self.environment = environment
        return self.environment

    def start_model_endpoint(self) -> None:
        """The built-in models get one local server per session; a real endpoint is checked once."""
        if self._model_ready:
            return
        self._clock()
        if self.settings.agent_url is not None:
            check_agent_reachable(self.settings.agent_url)
        elif self.settings.is_builtin:
            from medbench.models.builtin.server import ReferenceServer

            self.builtin_model_url = self._resources.enter_context(ReferenceServer()).base_url
        else:
            try:
                for url in self.settings.replica_urls:
                    check_endpoint_reachable(url)
            except SetupError as error:
                hint = builtin_model_hint(self.settings.model)
                raise SetupError(f"{error}; {hint}" if hint else str(error)) from None
        self._model_ready = True

    def open_folder(self) -> None:
        """Start or continue the run in the results folder, after everything else is up (once)."""
        if self.started:
            return
        self._clock()
        details = {
            "task_count": len(self.task_set.tasks),
            "tasks_spec": self.settings.tasks,
            "endpoint": self.settings.endpoint(),
            "selection": self.selection_record(),
        }
        if self.settings.shard is not None:
            details["shard_attempts"] = len(self.cases())
        try:
            self.recorded = open_run(
                self.folder,
                identity=self.identity(),
                details=details,
                session=self.session,
                resume=self.settings.resume,
            )
        except RunRefused as error:  # another session holds the folder, or --resume meets other settings
            raise SetupError(str(error)) from None
        self.setup_seconds = round(time.perf_counter() - (self._setup_began or time.perf_counter()), 3)
        self.started = True

    def preview_recorded(self) -> None:
        """--resume: the attempts already recorded, read before the folder is opened (nothing written)."""
        if self.settings.resume and not self.started:
            self.recorded = recorded_attempts(self.folder)

    def _clock(self) -> None:
        if self._setup_began is None:
            self._setup_began = time.perf_counter()

    def join(self, handoff: SessionHandoff) -> None:
        """An xdist worker joins the session its controller started."""
        self.environment = Environment.from_json(handoff.environment)
        self.builtin_model_url = handoff.builtin_model_url
        self.recorded = {(task_id, attempt) for task_id, attempt in handoff.recorded}
        self._model_ready = True
        self.started = True

    def handoff(self) -> SessionHandoff:
        assert self.environment is not None
        return SessionHandoff(
            self.environment.to_json(), self.builtin_model_url, [list(key) for key in sorted(self.recorded)]
        )

    def close(self) -> None:
        """Stop what this session started and free the results folder for the next session, once
        every line this process appended is on disk."""
        self._resources.close()
        self.folder.sync()
        self.folder.session_lock.release()

    def open_model(self) -> Any:
        """The model client of this process (thread-safe; attempts derive per-cassette siblings from it)."""
        from medbench.models.client import OpenAIChatModel

        s = self.settings
        if s.agent_url is not None:
            from medbench.a2a.client import A2AAgent

            return A2AAgent(s.agent_url, timeout=s.call_limits.timeout)
        if s.is_builtin:
            if self.builtin_model_url is None:
                raise SetupError("the built-in model endpoint was not started for this session")
            return OpenAIChatModel(
                s.model,
                self.builtin_model_url,
                api_key=BUILTIN_API_KEY,
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                **s.call_limits.client_kwargs(),
            )
        model = OpenAIChatModel(
            s.model,
            s.base_url,
            api_key=s.api_key,
            extra_headers=s.extra_headers or None,
            temperature=s.temperature,
            max_tokens=s.max_tokens,
            **s.call_limits.client_kwargs(),
        )
        if len(s.replica_urls) > 1:  # replicas of one model: each call goes to the least busy one
            from medbench.models.replicas import ReplicaPool

            return model.across(ReplicaPool(s.replica_urls))
        return model


def check_endpoint_reachable(base_url: str) -> None:
    """Stop before any task when nothing answers at the endpoint; any HTTP answer (even 401) will do.

    Dropped connections are retried a few times: one hiccup must not fail a 300-task session."""
    from medbench.models.preflight import probe_endpoint

    try:
        probe_endpoint(base_url)
    except requests.RequestException as error:
        raise SetupError(
            f"model endpoint {base_url} is not reachable ({type(error).__name__}); "
            "check --base-url and that the server is running"
        ) from None


def check_agent_reachable(agent_url: str) -> None:
    """Stop before any task when no A2A agent card answers at --agent-url."""
    from medbench.a2a.client import A2AAgent, AgentUnreachable

    try:
        A2AAgent(agent_url, timeout=10.0).card()
    except AgentUnreachable as error:
        raise SetupError(str(error)) from None
