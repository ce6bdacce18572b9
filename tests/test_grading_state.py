"""The state grader against the real embedded server: verdicts come from what the attempt created.

Attempts run through the real runner (agent loop, gateway with the attempt's write namespace,
graders, record) or POST straight into a namespace; expected values come from the population's
own record of its labs, not from the server.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers.grading_fakes import changed, magnesium_order, potassium_lab, potassium_order, transcript
from helpers.state_fixtures import (
    DISPLAY,
    REFERENCE,
    TextModel,
    magnesium_24h,
    pick,
    post_turn,
    potassium,
    run_attempt,
    subject,
)
from medbench.agent.protocol import POST_ERROR_PREFIX
from medbench.environment import Environment
from medbench.grading import grade
from medbench.grading.official import magnesium_tier, potassium_dose_meq
from medbench.grading.state import read_created
from medbench.models.builtin.adversaries import duplicate_posts, refused_post_first
from medbench.models.client import ModelReply
from medbench.results.writer import RunFolder
from medbench.runner.attempts import AttemptPool, AttemptRunner
from medbench.runner.session import BenchSession, Case
from medbench.settings import Settings, SetupError
from medbench.tasks.task import Task, TaskSet

pytest_plugins = ["helpers.state_fixtures"]  # its module fixtures: environment, population, task_set

WAIT_S = 30


def low_magnesium(task_set: TaskSet, population: Any) -> Task:
    return pick(task_set, 5, lambda t: (magnesium_24h(population, t.eval_MRN) or 9) <= 1.9)


def normal_magnesium(task_set: TaskSet, population: Any) -> Task:
    return pick(task_set, 5, lambda t: (magnesium_24h(population, t.eval_MRN) or 0) > 1.9)


def mg_order_for(task: Task, population: Any) -> dict[str, Any]:
    dose, hours = magnesium_tier(magnesium_24h(population, task.eval_MRN))
    return changed(magnesium_order(dose, hours), ("subject",), subject(task.eval_MRN))


def graded(environment: Environment, namespace: str, task: Task, outcome: Any, mode: str = "state") -> Any:
    with environment.gateway(namespace) as gateway:
        return grade(task, outcome, gateway, DISPLAY, mode)


def created_in(environment: Environment, namespace: str, *payloads: dict[str, Any]) -> None:
    with environment.gateway(namespace) as gateway:
        for payload in payloads:
            response = gateway.post(f"{DISPLAY}{payload['resourceType']}", payload)
            assert response.ok, response.text


def test_an_order_acknowledged_but_never_sent_passes_official_and_fails_state(
    environment, task_set, population, tmp_path: Path
) -> None:
    """The official post-mode acknowledges the reference agent's order without sending it: the
    official grader passes the claim; the EHR holds nothing, so the state grader fails it."""
    task = low_magnesium(task_set, population)
    official = run_attempt(environment, task_set, task, REFERENCE, tmp_path, grader="official", post_mode="official")
    assert official.record is not None and official.record["correct"] is True
    assert any(turn["content"].startswith("POST") for turn in official.outcome.history if turn["role"] == "agent")
    verdict = graded(environment, "never-sent", task, official.outcome)
    assert not verdict.correct
    assert "the server holds no MedicationRequest created by this attempt" in verdict.reason
    assert "IV magnesium" in verdict.reason


def test_an_agent_that_only_claims_its_order_in_finish_fails_state(
    environment, task_set, population, tmp_path: Path
) -> None:
    task = low_magnesium(task_set, population)
    value = magnesium_24h(population, task.eval_MRN)
    claims = TextModel(lambda messages: f'FINISH([{value}, "ordered IV magnesium as per protocol"])')
    result = run_attempt(environment, task_set, task, claims, tmp_path)
    assert result.record["correct"] is False
    assert "holds no MedicationRequest created by this attempt; due: an IV magnesium order" in result.record["reason"]


def test_a_post_the_server_refused_fails_under_state(environment, task_set, population, tmp_path: Path) -> None:
    task = low_magnesium(task_set, population)
    dose_value = ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "value")
    order = changed(mg_order_for(task, population), dose_value, "2 g")  # a string where FHIR has a decimal: 400

    def refused_then_finish(messages: list[dict[str, Any]]) -> str:
        return post_turn("MedicationRequest", order) if len(messages) == 1 else "FINISH([])"

    result = run_attempt(environment, task_set, task, TextModel(refused_then_finish), tmp_path)
    assert result.outcome.history[2]["content"].startswith(POST_ERROR_PREFIX + "400 Client Error")
    assert result.record["correct"] is False
    assert "the server holds no MedicationRequest created by this attempt" in result.record["reason"]


def test_duplicate_orders_fail_under_state_naming_both(environment, task_set, population, tmp_path: Path) -> None:
    task = low_magnesium(task_set, population)
    result = run_attempt(environment, task_set, task, TextModel(duplicate_posts), tmp_path)
    reason = result.record["reason"]
    assert result.record["correct"] is False
    assert "duplicates: the server holds 2 MedicationRequests created by this attempt" in reason
    assert len(re.findall(r"MedicationRequest/\d+", reason)) == 2


def test_the_reference_order_passes_under_state_as_the_server_stored_it(
    environment, task_set, population, tmp_path: Path
) -> None:
    """The reference agent writes the route as upstream does ("IV"); the server stores FHIR's
    CodeableConcept ({"text": "IV"}) and the state grader accepts what it stored."""
    task = low_magnesium(task_set, population)
    result = run_attempt(environment, task_set, task, REFERENCE, tmp_path)
    assert result.record["correct"] is True, result.record["reason"]
    assert result.record["transcript_verdicts"]["official"]["correct"] is True


def test_task5_an_order_where_magnesium_is_normal_fails_as_excess(environment, task_set, population) -> None:
    task = normal_magnesium(task_set, population)
    created_in(
        environment,
        "excess-order",
        changed(mg_order_for(low_magnesium(task_set, population), population), ("subject",), subject(task.eval_MRN)),
    )
    verdict = graded(environment, "excess-order", task, transcript(finish="[]"))
    assert not verdict.correct
    assert re.search(
        r"the server holds MedicationRequest/\d+ \(0338-1715-40, Patient/\w+\), created by this attempt, "
        r"but magnesium [\d.]+ is not low \(above 1.9\), so nothing was due",
        verdict.reason,
    ), verdict.reason


def test_an_order_for_another_patient_fails_naming_the_subject(environment, task_set, population) -> None:
    task = low_magnesium(task_set, population)
    other = normal_magnesium(task_set, population).eval_MRN
    created_in(environment, "other-patient", changed(mg_order_for(task, population), ("subject",), subject(other)))
    verdict = graded(environment, "other-patient", task, transcript(finish="[]"))
    assert not verdict.correct
    assert "is not an IV magnesium order" in verdict.reason and f"Patient/{other}" in verdict.reason


def test_an_observation_the_agent_created_does_not_change_the_branch(environment, task_set, population) -> None:
    """A made-up normal magnesium "now" does not excuse the order: the branch is read from the chart as it was."""
    task = low_magnesium(task_set, population)
    fake_lab = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "MG"}]},
        "effectiveDateTime": "2023-11-13T10:15:00+00:00",
        "valueQuantity": {"value": 2.5, "unit": "mg/dL"},
        "subject": subject(task.eval_MRN),
    }
    created_in(environment, "fake-lab", fake_lab)
    verdict = graded(environment, "fake-lab", task, transcript(finish="[]"))
    assert not verdict.correct
    assert "holds no MedicationRequest created by this attempt; due: an IV magnesium order" in verdict.reason
    assert re.search(r"also holds Observation/\d+ \(MG, ", verdict.reason), verdict.reason


def test_task9_orders_created_lab_first_pass_state_and_fail_the_transcript_order(
    environment, task_set, population
) -> None:
    task = pick(task_set, 9, lambda t: (potassium(population, t.eval_MRN) or 9) < 3.5)
    value = potassium(population, task.eval_MRN)
    medication = changed(potassium_order(potassium_dose_meq(value)), ("subject",), subject(task.eval_MRN))
    lab = changed(potassium_lab(), ("subject",), subject(task.eval_MRN))
    created_in(environment, "lab-first", lab, medication)
    outcome = transcript(
        post_turn("ServiceRequest", lab), post_turn("MedicationRequest", medication), finish=f"[{value}]"
    )
    assert graded(environment, "lab-first", task, outcome).correct
    assert not graded(environment, "lab-first", task, outcome, mode="corrected").correct


def test_read_only_task_with_a_refused_post_passes_state_and_fails_official(
    environment, task_set, tmp_path: Path
) -> None:
    task = pick(task_set, 4, lambda t: True)
    result = run_attempt(environment, task_set, task, TextModel(refused_post_first), tmp_path)
    assert result.outcome.history[2]["content"].startswith(POST_ERROR_PREFIX)
    assert result.record["correct"] is True, result.record["reason"]
    verdicts = result.record["transcript_verdicts"]
    assert verdicts["corrected"]["correct"] is True
    assert verdicts["official"]["correct"] is False and "contains the word POST" in verdicts["official"]["reason"]


def test_read_only_task_with_a_created_resource_fails_naming_it(environment, task_set, population) -> None:
    task = pick(task_set, 4, lambda t: True)
    created_in(environment, "read-only-write", mg_order_for(low_magnesium(task_set, population), population))
    verdict = graded(environment, "read-only-write", task, transcript(finish="[-1]"))
    assert not verdict.correct
    assert re.match(
        r"task4 \(state\): the server holds MedicationRequest/\d+ .*created by this attempt, "
        r"but task4 is read-only",
        verdict.reason,
    ), verdict.reason


def test_created_resources_are_read_from_the_attempts_namespace_only(environment, task_set, population) -> None:
    task = low_magnesium(task_set, population)
    created_in(environment, "mine", mg_order_for(task, population))
    with (
        environment.gateway("mine") as mine,
        environment.gateway("someone-else") as other,
        environment.gateway() as plain,
    ):
        assert [c.resource_type for c in read_created(mine, DISPLAY)] == ["MedicationRequest"]
        assert read_created(other, DISPLAY) == [] and read_created(plain, DISPLAY) == []


# --- attempts in flight together --------------------------------------------------------------


@dataclass(frozen=True)
class HeldDrops(Environment):
    """Drops an attempt's namespace only once every attempt has been graded: each grade runs while
    the others' writes exist."""

    barrier: threading.Barrier | None = field(default=None, compare=False)

    def drop_namespace(self, namespace: str) -> None:
        assert self.barrier is not None
        self.barrier.wait()
        super().drop_namespace(namespace)


class OrdersThenWait:
    """POSTs the order as many times as the task's instruction says (`copies=N`), waits until every
    attempt has POSTed, then FINISHes."""

    def __init__(self, order: dict[str, Any], barrier: threading.Barrier) -> None:
        self.order = order
        self.barrier = barrier

    def complete(self, messages: list[dict[str, Any]]) -> ModelReply:
        copies = int(re.search(r"copies=(\d)", messages[0]["content"]).group(1))
        sent = sum(1 for m in messages if m["role"] == "assistant")
        if sent < copies:
            content = post_turn("MedicationRequest", self.order)
        else:
            self.barrier.wait()
            content = "FINISH([])"
        return ModelReply(content=content, prompt_tokens=1, completion_tokens=1, latency_s=0.0, retries=0)


def test_state_verdicts_stay_isolated_with_attempts_in_flight_together(
    environment, task_set, population, tmp_path: Path
) -> None:
    """Two attempts on the same patient at once: one orders once, one twice. Each is graded while
    the other's orders exist; the first must see one order (correct), the second exactly two."""
    base = low_magnesium(task_set, population)
    tasks = tuple(Task(f"task5_{n}", 5, f"Order magnesium. copies={n}", "", eval_MRN=base.eval_MRN) for n in (1, 2))
    isolation = TaskSet("isolation", tasks, "{context} {question} {api_base} {functions}", [], "generated")
    held = HeldDrops(
        environment.real_base, DISPLAY, "embedded:test", "embedded", barrier=threading.Barrier(2, timeout=WAIT_S)
    )
    runner = AttemptRunner(
        session="in-flight",
        settings=Settings(grader="state", post_mode="execute", results_dir=tmp_path),
        task_set=isolation,
        environment=held,
        folder=RunFolder(tmp_path),
        model=OrdersThenWait(mg_order_for(base, population), threading.Barrier(2, timeout=WAIT_S)),
    )
    pool = AttemptPool(runner, concurrency=2)
    cases = [Case(task.id, 5, index, 1, 1) for index, task in enumerate(tasks)]
    pool.submit(cases)
    once, twice = (pool.result(case) for case in cases)
    pool.stop()
    assert once.record["correct"] is True, once.record["reason"]
    assert twice.record["correct"] is False
    assert "holds 2 MedicationRequests" in twice.record["reason"]
    with environment.gateway() as gateway:  # both namespaces were dropped after grading
        query = f"MedicationRequest?patient={base.eval_MRN}&_lastUpdated=gt2023-11-13T10:15:00Z"
        body = json.loads(gateway.get(DISPLAY + query).text)
    assert body["total"] == 0


# --- modes ---------------------------------------------------------------------------------


def test_state_grader_needs_execute_post_mode_in_the_runner(tmp_path: Path) -> None:
    settings = Settings(grader="state", post_mode="official", ehr_scale="small", results_dir=tmp_path)
    assert "needs --post-mode=execute" in (settings.mode_problem() or "")
    assert Settings(grader="state", post_mode="execute").mode_problem() is None
    with pytest.raises(SetupError, match="--grader=state .* needs --post-mode=execute"):
        BenchSession(settings, "modes").start_environment()
