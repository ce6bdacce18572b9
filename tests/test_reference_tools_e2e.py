"""End to end in tools mode: the built-in models through the real harness on the embedded EHR.

Real parts throughout: the built-in models behind their OpenAI-compatible server (openai SDK,
`tools` in every request), the embedded FHIR server over loopback HTTP (small scale), the tools
loop and the unchanged graders. The reference model must score every task in both grader modes;
the baselines must pass exactly the tasks they pass in the text protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from helpers.official import OFFICIAL_DIR, require_official
from medbench.agent.loop import LoopConfig, run_task
from medbench.agent.tools_loop import run_tools_task
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
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer() as running:
        yield running


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medbench-cache")


@pytest.fixture(scope="module")
def generated() -> TaskSet:
    return load_task_set("generated", task_seed=0, population=build_population(seed=0, scale="small"))


@pytest.fixture(scope="module")
def official() -> TaskSet:
    if not (OFFICIAL / "test_data_v2.json").exists():
        require_official()
    return load_official(official_dir=OFFICIAL)


def model(server: ReferenceServer, name: str) -> OpenAIChatModel:
    return OpenAIChatModel(name, base_url=server.base_url, max_retries=0)


def misses(task_set: TaskSet, fhir: FhirServer, chat: OpenAIChatModel, post_mode: str = "official") -> list[str]:
    """One line per task that is not correct in both grader modes in tools mode, saying why."""
    gateway = FhirGateway(fhir.base_url, DEFAULT_DISPLAY_BASE)
    found = []
    for task in task_set.tasks:
        outcome = run_tools_task(task, task_set, chat, gateway, LoopConfig(post_mode=post_mode))
        for mode in ("official", "corrected"):
            verdict = grade(task, outcome, gateway, DEFAULT_DISPLAY_BASE, mode=mode)
            if not verdict.correct:
                tail = [m.get("content") or m.get("tool_calls") for m in outcome.messages[1:]][-3:]
                found.append(f"{task.id} [{mode}] {outcome.status} {verdict.reason} error={outcome.error} tail={tail}")
        if post_mode == "execute":
            fhir.reset_writes()
    return found


def passed(task_set: TaskSet, fhir: FhirServer, chat: OpenAIChatModel, protocol: str) -> set[str]:
    gateway = FhirGateway(fhir.base_url, DEFAULT_DISPLAY_BASE)
    run = run_tools_task if protocol == "tools" else run_task
    return {
        task.id
        for task in task_set.tasks
        if grade(task, run(task, task_set, chat, gateway, LoopConfig()), gateway, DEFAULT_DISPLAY_BASE).correct
    }


def test_reference_scores_every_generated_task_in_tools_mode(server, cache_dir, generated):
    with embedded_server(seed=0, scale="small", cache_dir=cache_dir) as fhir:
        assert misses(generated, fhir, model(server, "reference")) == []


def test_reference_scores_every_official_task_in_its_real_situation_in_tools_mode(server, cache_dir, official):
    with embedded_server(seed=0, scale="small", seating=Seating.for_tasks(official.tasks), cache_dir=cache_dir) as fhir:
        assert misses(official, fhir, model(server, "reference")) == []


def test_reference_scores_writing_tasks_in_tools_mode_when_posts_are_executed(server, cache_dir, generated):
    writing = replace(generated, tasks=tuple(t for t in generated.tasks if t.category in (3, 5, 8, 9, 10)))
    with embedded_server(seed=0, scale="small", cache_dir=cache_dir) as fhir:
        assert misses(writing, fhir, model(server, "reference"), post_mode="execute") == []


@pytest.mark.parametrize("baseline", ["do-nothing", "give-up"])
def test_baselines_pass_the_same_tasks_in_both_protocols(server, cache_dir, generated, official, baseline):
    chat = model(server, baseline)
    with embedded_server(seed=0, scale="small", cache_dir=cache_dir) as fhir:
        text, tools = passed(generated, fhir, chat, "text"), passed(generated, fhir, chat, "tools")
        assert text == tools and text
    with embedded_server(seed=0, scale="small", seating=Seating.for_tasks(official.tasks), cache_dir=cache_dir) as fhir:
        text, tools = passed(official, fhir, chat, "text"), passed(official, fhir, chat, "tools")
        assert text == tools and len(text) == {"do-nothing": 70, "give-up": 16}[baseline]
