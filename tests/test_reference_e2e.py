"""End to end: the reference model scores 100% through the real harness on the embedded EHR.

Every part is real: the reference model behind its OpenAI-compatible server (openai SDK
client), the embedded FHIR server over loopback HTTP on the small-scale synthetic EHR, the
agent loop and the graders. A miss here is a bug in one of them; the failure message lists
each missed task with the grader's reason and the transcript's last turns to tell which.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from helpers.official import OFFICIAL_DIR, require_official
from medbench.agent.loop import LoopConfig, run_task
from medbench.ehr.population import build_population
from medbench.ehr.seating import Seating
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.environment.provision import embedded_server
from medbench.fhir import FhirServer
from medbench.grading import grade
from medbench.models.builtin.server import ReferenceServer
from medbench.models.client import OpenAIChatModel
from medbench.tasks import load_official, load_task_set
from medbench.tasks.task import TaskSet

OFFICIAL = OFFICIAL_DIR


@pytest.fixture(scope="module")
def model() -> Iterator[OpenAIChatModel]:
    with ReferenceServer() as server:
        yield OpenAIChatModel("reference", base_url=server.base_url, max_retries=0)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medbench-cache")


def misses(task_set: TaskSet, fhir: FhirServer, model: OpenAIChatModel, post_mode: str = "official") -> list[str]:
    """One line per task that is not correct in both grader modes, saying why."""
    gateway = FhirGateway(fhir.base_url, DEFAULT_DISPLAY_BASE)
    config = LoopConfig(post_mode=post_mode)
    found = []
    for task in task_set.tasks:
        outcome = run_task(task, task_set, model, gateway, config)
        for mode in ("official", "corrected"):
            verdict = grade(task, outcome, gateway, DEFAULT_DISPLAY_BASE, mode=mode)
            if not verdict.correct:
                tail = [turn["content"][:300] for turn in outcome.history[1:]][-3:]
                found.append(f"{task.id} [{mode}] {outcome.status} {verdict.reason} error={outcome.error} turns={tail}")
        if post_mode == "execute":
            fhir.reset_writes()
    return found


def test_reference_scores_every_generated_task(model, cache_dir):
    task_set = load_task_set("generated", task_seed=0, population=build_population(seed=0, scale="small"))
    assert len(task_set.tasks) == 300
    with embedded_server(seed=0, scale="small", cache_dir=cache_dir) as fhir:
        assert misses(task_set, fhir, model) == []


def test_reference_scores_every_official_task_in_its_real_situation_on_the_embedded_ehr(model, cache_dir):
    if not (OFFICIAL / "test_data_v2.json").exists():
        require_official()
    task_set = load_official(official_dir=OFFICIAL, cache_dir=cache_dir)
    seating = Seating.for_tasks(task_set.tasks)
    assert seating.kind == "situations"
    with embedded_server(seed=0, scale="small", seating=seating, cache_dir=cache_dir) as fhir:
        assert misses(task_set, fhir, model) == []


def test_reference_scores_generated_tasks_when_posts_are_executed(model, cache_dir):
    """In execute post-mode the server stores each POST, so the agent's payloads must also be accepted by it."""
    full = load_task_set("generated", task_seed=0, population=build_population(seed=0, scale="small"))
    writing = tuple(t for t in full.tasks if t.category in (3, 5, 8, 9, 10))
    task_set = replace(full, tasks=writing)
    with embedded_server(seed=0, scale="small", cache_dir=cache_dir) as fhir:
        assert misses(task_set, fhir, model, post_mode="execute") == []
