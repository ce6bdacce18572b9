"""Graders of MedAgentBench v2 in three modes: `official`, `corrected` and `state`.

- official: upstream's `new_refsol` decisions, quirks included (GRADING.md), with one
  documented exception: task1's 12-month window is measured from the run's recorded start
  time instead of the wall clock at grading time, so a replay reproduces its verdicts.
- corrected: the quirks fixed -- the answers the instructions ask for are checked (task1, task6,
  task9, task10 besides task3), "silent" means no accepted write (not the word POST anywhere),
  an unanswered last POST is not a crash, the latest QTc is the latest by clinical time, and
  task1 is anchored to the task's "now".
- state: the corrected decisions, with the writes read from what the attempt's namespace holds.

Upstream grades every attempt that produced a result, with `[]` where the agent never called
`finish` (steps exhausted, a reply without a tool call); so do we. Model-call failures and
harness errors are not graded (incorrect, with the status as reason).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medbench.grading.checks import Incorrect
from medbench.grading.fhir_reads import Gateway
from medbench.grading.v2.decisions import CORRECTED_V2, GRADERS_V2, OFFICIAL_V2, Case, V2Rules
from medbench.grading.v2.evidence import CorrectedEvidence, Evidence, OfficialEvidence, StateEvidence
from medbench.outcomes import COMPLETED, INVALID_ACTION, LIMIT_REACHED, Verdict
from medbench.tasks.task import Task

V2_GRADER_MODES = ("official", "corrected", "state")
# Statuses upstream grades: a finish, or a run that ended without one (its value is `[]`).
GRADED_STATUSES = (COMPLETED, INVALID_ACTION, LIMIT_REACHED)


def grade_v2(
    task: Task,
    outcome: Any,
    gateway: Gateway,
    api_base: str,
    mode: str = "official",
    run_started: datetime | None = None,
) -> Verdict:
    """The verdict on one v2 attempt. `run_started` (aware) anchors task1 in the official mode."""
    if mode not in V2_GRADER_MODES:
        raise ValueError(f"unknown grader mode {mode!r}; choose one of {list(V2_GRADER_MODES)}")
    if task.category not in GRADERS_V2:
        raise ValueError(f"task {task.id} has category {task.category!r}; v2 graders exist for 1..10")
    if outcome.status not in GRADED_STATUSES:
        return Verdict(False, outcome.status)
    if mode == "official" and task.category == 1 and run_started is None:
        raise ValueError("the official v2 task1 grader needs the run's start time (run_started)")
    history = outcome.history
    evidence: Evidence
    rules: V2Rules
    if mode == "official":
        evidence, rules = OfficialEvidence(history), OFFICIAL_V2
    elif mode == "corrected":
        evidence, rules = CorrectedEvidence(history), CORRECTED_V2
    else:
        evidence, rules = StateEvidence(gateway, api_base, str(task.eval_MRN)), CORRECTED_V2
    case = Case(
        task,
        outcome.result if outcome.result is not None else "[]",
        evidence,
        gateway,
        api_base,
        rules,
        run_started or datetime.now().astimezone(),
    )
    try:
        GRADERS_V2[task.category](case)
    except Incorrect as error:
        return Verdict(False, str(error))
    except Exception as error:  # noqa: BLE001 - upstream's graders turn any exception into "incorrect"
        return Verdict(False, f"the grader raised {type(error).__name__}: {error}")
    return Verdict(True)


__all__ = ["GRADED_STATUSES", "V2_GRADER_MODES", "grade_v2"]
