"""Graders: decide whether one task attempt is correct, in the official, corrected or state mode.

``grade`` is the one entry point the plugin calls; the per-category graders live in
``official.py`` (``grade_task1`` .. ``grade_task10``), ``corrected.py`` holds the fixes, and
``state.py`` decides writes from what the server holds (execute post-mode only).
"""

from __future__ import annotations

from typing import Protocol

from medbench.grading.corrected import CORRECTED
from medbench.grading.fhir_reads import Gateway
from medbench.grading.official import GRADERS, OFFICIAL, Outcome, Rules
from medbench.grading.state import grade_state
from medbench.outcomes import COMPLETED, ERROR, Verdict
from medbench.tasks.task import Task

# The transcript graders: their rules read what the agent wrote.
MODES: dict[str, Rules] = {"official": OFFICIAL, "corrected": CORRECTED}
# Every grader mode; `state` decides writes from the EHR (needs the attempt's write namespace).
GRADER_MODES = ("official", "corrected", "state")


class Graded(Outcome, Protocol):
    status: str


def grade(task: Task, outcome: Graded, gateway: Gateway, api_base: str, mode: str = "official") -> Verdict:
    """The verdict on one task outcome.

    ``completed`` outcomes are graded. In the official mode, so is an attempt that ended in a
    harness error with a transcript (``graded_as_task_error``), as upstream grades its
    TASK_ERROR results. Any other status is incorrect with the status as reason. ``gateway``
    must reach the same FHIR server the agent used and ``api_base`` must be the base the
    prompt showed (POST urls are compared against it). In the ``state`` mode the gateway must
    carry the attempt's write namespace: the verdict is read from what the attempt created.
    """
    if mode not in GRADER_MODES:
        raise ValueError(f"unknown grader mode {mode!r}; choose one of {list(GRADER_MODES)}")
    if task.category not in GRADERS:
        raise ValueError(f"task {task.id} has category {task.category!r}; graders exist for 1..10")
    if outcome.status == COMPLETED:
        if mode == "state":
            return grade_state(task, outcome, gateway, api_base)
        return GRADERS[task.category](task, outcome, gateway, api_base, MODES[mode])
    if mode == "official" and graded_as_task_error(outcome):
        verdict = GRADERS[task.category](task, outcome, gateway, api_base, OFFICIAL)
        if verdict.correct:
            return verdict
        return Verdict(False, f"{outcome.status}, graded as upstream grades a task error: {verdict.reason}")
    return Verdict(False, outcome.status)


def transcript_verdicts(task: Task, outcome: Graded, gateway: Gateway, api_base: str) -> dict[str, dict[str, object]]:
    """The official and corrected verdicts on the same attempt, for a state run's agreement report.

    Computed while the attempt's writes still exist (the transcript graders' reads then see the
    same server the state grader saw); JSON-ready, one ``{"correct", "reason"}`` per mode.
    """
    verdicts = {mode: grade(task, outcome, gateway, api_base, mode) for mode in MODES}
    return {mode: {"correct": v.correct, "reason": v.reason} for mode, v in verdicts.items()}


def graded_as_task_error(outcome: Graded) -> bool:
    """Whether upstream would grade this errored attempt: its loop turns an exception raised in
    the task's own code into TASK_ERROR with a non-null result (``{"error": ...}``) and the
    history so far, and ``calculate_overall`` grades every result that is not None. So graders
    that check only the transcript (task3 and task8 POSTs, task5 with no magnesium in 24 h)
    can find it correct; every check of the FINISH answer fails, since that result is no JSON
    text (here: there is no FINISH result). A failed model call is not such an error: upstream's
    client gives the sample up (AGENT_FAILED) without a result, and it is rerun, not graded.
    """
    return outcome.status == ERROR and getattr(outcome, "error_source", None) == "harness" and bool(outcome.history)


__all__ = ["GRADER_MODES", "MODES", "Verdict", "grade", "graded_as_task_error", "transcript_verdicts"]
