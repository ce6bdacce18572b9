"""Graders: decide whether one task's transcript is correct, in the official or corrected mode.

``grade`` is the one entry point the plugin calls; the per-category graders live in
``official.py`` (``grade_task1`` .. ``grade_task10``) and ``corrected.py`` holds the fixes.
"""

from __future__ import annotations

from typing import Protocol

from medbench.agent.status import COMPLETED
from medbench.grading.checks import Verdict
from medbench.grading.corrected import CORRECTED
from medbench.grading.fhir_reads import Gateway
from medbench.grading.official import GRADERS, OFFICIAL, Outcome, Rules
from medbench.tasks.model import Task

MODES: dict[str, Rules] = {"official": OFFICIAL, "corrected": CORRECTED}


class Graded(Outcome, Protocol):
    status: str


def grade(task: Task, outcome: Graded, gateway: Gateway, api_base: str, mode: str = "official") -> Verdict:
    """The verdict on one task outcome.

    Only ``completed`` outcomes are graded (as upstream); any other status is incorrect with
    the status as reason. ``gateway`` must reach the same FHIR server the agent used and
    ``api_base`` must be the base the prompt showed (POST urls are compared against it).
    """
    if mode not in MODES:
        raise ValueError(f"unknown grader mode {mode!r}; choose one of {sorted(MODES)}")
    if task.category not in GRADERS:
        raise ValueError(f"task {task.id} has category {task.category!r}; graders exist for 1..10")
    if outcome.status != COMPLETED:
        return Verdict(False, outcome.status)
    return GRADERS[task.category](task, outcome, gateway, api_base, MODES[mode])


__all__ = ["MODES", "Verdict", "grade"]
