"""The built-in baselines score exactly the figures the official data gives (medbench.models.builtin.baselines).

On the official server's data an agent answering `FINISH([])` at once passes 70 of 300 official
tasks, and one giving up with an answer that is not a list passes 16 (5.3%). Seated by situation,
the embedded EHR must give the same counts, task by task, through the real model endpoint,
agent loop and graders.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.official import OFFICIAL_DIR, require_official
from medbench.agent.loop import LoopConfig, run_task
from medbench.ehr.seating import Seating
from medbench.ehr.situations import load_situations
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.environment.provision import embedded_server
from medbench.grading import grade
from medbench.models.builtin.server import ReferenceServer
from medbench.models.client import OpenAIChatModel
from medbench.tasks import load_official
from medbench.tasks.task import TaskSet

OFFICIAL = OFFICIAL_DIR


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> TaskSet:
    if not (OFFICIAL / "test_data_v2.json").exists():
        require_official()
    return load_official(official_dir=OFFICIAL, cache_dir=tmp_path_factory.mktemp("official"))


@pytest.fixture(scope="module")
def gateway(official: TaskSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirGateway]:
    seating = Seating.for_tasks(official.tasks)
    with embedded_server(seed=0, scale="small", seating=seating, cache_dir=tmp_path_factory.mktemp("ehr")) as fhir:
        yield FhirGateway(fhir.base_url, DEFAULT_DISPLAY_BASE)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with ReferenceServer() as server:
        yield server.base_url


def passed(model_name: str, official: TaskSet, gateway: FhirGateway, endpoint: str) -> list[str]:
    model = OpenAIChatModel(model_name, endpoint, max_retries=0)
    ids = []
    for task in official.tasks:
        outcome = run_task(task, official, model, gateway, LoopConfig())
        if grade(task, outcome, gateway, DEFAULT_DISPLAY_BASE).correct:
            ids.append(task.id)
    return ids


def test_do_nothing_passes_the_70_official_tasks_where_an_empty_answer_is_right(official, gateway, endpoint) -> None:
    wanted = {(5, "missing"), (5, "normal"), (9, "normal"), (10, "fresh")}
    expected = [s.task_id for s in load_situations().values() if (s.category, s.situation) in wanted]
    assert passed("do-nothing", official, gateway, endpoint) == expected
    assert len(expected) == 70


def test_give_up_passes_only_the_16_magnesium_tasks_with_nothing_measured_in_24h(official, gateway, endpoint) -> None:
    expected = [s.task_id for s in load_situations().values() if (s.category, s.situation) == (5, "missing")]
    assert passed("give-up", official, gateway, endpoint) == expected
    assert len(expected) == 16
