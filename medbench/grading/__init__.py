"""Graders: decide whether one task's transcript is correct, in the official or corrected mode.

``grade`` is the one entry point the plugin calls; the per-category graders live in
``official.py`` (``grade_task1`` .. ``grade_task10``) and ``corrected.py`` holds the fixes.
"""

from __future__ import annotations

from typing import Protocol

from medbench.types import COMPLETED, ERROR
from medbench.types import Verdict
from medbench.grading.corrected import CORRECTED
from medbench.grading.fhir_reads import Gateway
from medbench.grading.official import GRADERS, OFFICIAL, Outcome, Rules
from medbench.tasks.model import Task

MODES: dict[str, Rules] = {"official": OFFICIAL, "corrected": CORRECTED}


class Graded(Outcome, Protocol):
    status: str


def grade(task: Task, outcome: Graded, gateway: Gateway, api_base: str, mode: str = "official") -> Verdict:
    """The verdict on one task outcome.

    ``completed`` outcomes are graded. In the official mode, so is an attempt that ended in a
    harness error with a transcript (``graded_as_task_error``), as upstream grades its
    TASK_ERROR results. Any other status is incorrect with the status as reason. ``gateway``
    must reach the same FHIR server the agent used and ``api_base`` must be the base the
    prompt showed (POST urls are compared against it).
    """
    if mode not in MODES:
        raise ValueError(f"unknown grader mode {mode!r}; choose one of {sorted(MODES)}")
    if task.category not in GRADERS:
        raise ValueError(f"task {task.id} has category {task.category!r}; graders exist for 1..10")
    if outcome.status == COMPLETED:
        return GRADERS[task.category](task, outcome, gateway, api_base, MODES[mode])
    if mode == "official" and graded_as_task_error(outcome):
        verdict = GRADERS[task.category](task, outcome, gateway, api_base, OFFICIAL)
        if verdict.correct:
            return verdict
        return Verdict(False, f"{outcome.status}, graded as upstream grades a task error: {verdict.reason}")
    return Verdict(False, outcome.status)


def graded_as_task_error(outcome: Graded) -> bool:
    """Whether upstream would grade this errored attempt: its loop turns an exception raised in
    the task's own code into TASK_ERROR with a non-null result (``{"error": ...}``) and the
    history so far, and ``calculate_overall`` grades every result that is not None. So graders
    that check only the transcript (task3 and task8 POSTs, task5 with no magnesium in 24 h)
    can find it correct; every check of the FINISH answer fails, since that result is no JSON
    text (here: there is no FINISH result). A failed model call is not such an error: upstream's
    client gives the sample up (AGENT_FAILED) without a result, and it is rerun, not graded.
    """
    return (outcome.status == ERROR and getattr(outcome, "error_source", None) == "harness"
            and bool(outcome.history))


__all__ = ["MODES", "Verdict", "grade", "graded_as_task_error"]
