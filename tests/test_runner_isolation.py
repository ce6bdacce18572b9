"""Execute mode with attempts in flight together: each attempt sees its own POSTs and none of another's.

Two attempts of the same task run at once through the real attempt pool against the embedded
server. A barrier holds both until both have POSTed, so each one's search runs while the other's
write exists; each must find exactly its own.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medbench.ehr.cache import ensure_database
from medbench.environment import Environment
from medbench.fhir import FhirServer
from medbench.models.client import ModelReply
from medbench.results.writer import RunFolder
from medbench.runner.attempts import AttemptPool, AttemptRunner
from medbench.runner.session import Case
from medbench.settings import Settings
from medbench.tasks.task import Task, TaskSet

DISPLAY = "http://localhost:8080/fhir/"
CODE = "ISOLATION-TEST"
WAIT_S = 30


@pytest.fixture(scope="module")
def environment() -> Iterator[Environment]:
    with FhirServer(ensure_database(0, "small")) as server:
        yield Environment(server.base_url, DISPLAY, "embedded:test", "embedded")


@pytest.fixture(scope="module")
def patient(environment: Environment) -> str:
    """A patient of the EHR: the server refuses references to patients that do not exist, as HAPI does."""
    with environment.gateway() as gateway:
        return json.loads(gateway.get(f"{DISPLAY}Patient?_count=1").text)["entry"][0]["resource"]["id"]


class PostThenSearch:
    """Turn 1 POSTs an Observation carrying the attempt's mark; turn 2 (after the barrier) searches; then FINISH."""

    def __init__(self, barrier: threading.Barrier, patient: str) -> None:
        self.barrier = barrier
        self.patient = patient

    def complete(self, messages: list[dict[str, Any]]) -> ModelReply:
        turns = sum(1 for m in messages if m["role"] == "assistant")
        mark = re.search(r"mark=(\w+)", messages[0]["content"])
        if turns == 0:
            body = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": CODE}]},
                "subject": {"reference": f"Patient/{self.patient}"},
                "valueString": "placeholder",
            }
            content = f"POST {DISPLAY}Observation\n{json.dumps(body)}"
        elif turns == 1:
            self.barrier.wait()
            content = f"GET {DISPLAY}Observation?code={CODE}"
        else:
            found = re.findall(r'"total": (\d+)', messages[-1]["content"])
            content = f'FINISH(["{found[0] if found else "none"}", "{mark.group(1) if mark else ""}"])'
        return ModelReply(content=content, prompt_tokens=1, completion_tokens=1, latency_s=0.0, retries=0)


def test_attempts_in_flight_together_each_see_only_their_own_writes(
    environment: Environment, patient: str, tmp_path: Path
) -> None:
    task = Task("task3_1", 3, "Record it. mark=shared", "", eval_MRN=patient)
    task_set = TaskSet("isolation", (task,), "{context} {question} {api_base} {functions}", [], "generated")
    settings = Settings(post_mode="execute", repeats=2, results_dir=tmp_path)
    runner = AttemptRunner(
        session="isolation",
        settings=settings,
        task_set=task_set,
        environment=environment,
        model=PostThenSearch(threading.Barrier(2, timeout=WAIT_S), patient),
        folder=RunFolder(tmp_path),
    )
    pool = AttemptPool(runner, concurrency=2)
    cases = [Case("task3_1", 3, 0, attempt, 2) for attempt in (1, 2)]
    pool.submit(cases)
    results = [pool.result(case) for case in cases]
    pool.stop()
    for result in results:
        assert result.outcome is not None and result.outcome.status == "completed", result.outcome
        assert json.loads(result.outcome.result or "[]")[0] == "1", result.outcome.history[-1]["content"][:400]


def test_a_dropped_namespace_takes_its_writes_with_it_and_leaves_others(environment: Environment, patient: str) -> None:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": CODE + "-DROP"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    url = f"{DISPLAY}Observation?code={CODE}-DROP"
    with environment.gateway("keep") as keep, environment.gateway("drop") as drop:
        assert keep.post(f"{DISPLAY}Observation", body).ok and drop.post(f"{DISPLAY}Observation", body).ok
        environment.drop_namespace("drop")
        assert '"total": 1' in keep.get(url).text
        assert '"total": 0' in drop.get(url).text
