"""Shared pieces of the state-grader tests: the small EHR behind a real embedded server, the generated
task set drawn from it, tasks picked by their branch from the population's own record of its labs,
and attempts run through the real runner (loop, gateway with its write namespace, grader, record).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from medbench.clock import NOW
from medbench.ehr.cache import ensure_database
from medbench.ehr.population import Population, build_population
from medbench.environment import Environment
from medbench.fhir import FhirServer
from medbench.models.builtin.reference_agent import reference_reply
from medbench.models.client import ModelReply
from medbench.results.writer import RunFolder
from medbench.runner.attempts import AttemptResult, AttemptRunner
from medbench.runner.session import Case
from medbench.settings import Settings
from medbench.tasks.generated import generate_task_set
from medbench.tasks.task import Task, TaskSet

DISPLAY = "http://localhost:8080/fhir/"
Reply = Callable[[list[dict[str, Any]]], str]


@dataclass
class TextModel:
    """A chat model in this process: a function from the conversation to the next action."""

    reply: Reply

    def complete(self, messages: list[dict[str, Any]]) -> ModelReply:
        return ModelReply(content=self.reply(messages), prompt_tokens=1, completion_tokens=1, latency_s=0.0, retries=0)


REFERENCE = TextModel(reference_reply)


@pytest.fixture(scope="module")
def population() -> Population:
    return build_population(seed=0, scale="small")


@pytest.fixture(scope="module")
def task_set(population: Population) -> TaskSet:
    return generate_task_set(0, population)


@pytest.fixture(scope="module")
def environment() -> Iterator[Environment]:
    with FhirServer(ensure_database(0, "small")) as server:
        yield Environment(server.base_url, DISPLAY, "embedded:test", "embedded")


def latest(readings: list[tuple[Any, float]]) -> tuple[Any, float] | None:
    best = None
    for time, value in readings:
        if best is None or time > best[0]:
            best = (time, value)
    return best


def magnesium_24h(population: Population, mrn: str) -> float | None:
    record = next(p for p in population.patients if p.mrn == mrn)
    found = latest([(t, v) for t, v in record.labs["MG"] if t >= NOW - timedelta(hours=24)])
    return found[1] if found else None


def potassium(population: Population, mrn: str) -> float | None:
    record = next(p for p in population.patients if p.mrn == mrn)
    found = latest(record.labs["K"])
    return found[1] if found else None


def pick(task_set: TaskSet, category: int, wanted: Callable[[Task], bool]) -> Task:
    return next(task for task in task_set.tasks if task.category == category and wanted(task))


def run_attempt(
    environment: Environment,
    task_set: TaskSet,
    task: Task,
    model: Any,
    folder: Path,
    grader: str = "state",
    post_mode: str = "execute",
    session: str = "state-test",
) -> AttemptResult:
    """One attempt through the real runner: in execute mode its POSTs go to its own namespace, dropped after grading."""
    settings = Settings(grader=grader, post_mode=post_mode, results_dir=folder)
    runner = AttemptRunner(
        session=session,
        settings=settings,
        task_set=task_set,
        environment=environment,
        model=model,
        folder=RunFolder(folder),
    )
    index = task_set.tasks.index(task)
    return runner.run(Case(task.id, task.category, index, 1, 1))


def subject(mrn: str) -> dict[str, str]:
    return {"reference": f"Patient/{mrn}"}


def post_turn(resource_type: str, payload: dict[str, Any]) -> str:
    return f"POST {DISPLAY}{resource_type}\n{json.dumps(payload)}"
