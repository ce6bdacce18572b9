"""The grading branches of the ten v2 categories, and the clock facts every v2 chart is built around.

A branch is the situation a v2 grader finds a patient in (GRADING.md / DATA.md of the shared v2
reference): "stale_ct" means the latest CT abdomen is more than a year old, so an order is due. The
names are ours; the decisions behind them are upstream's. Branches marked silent need no action.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

CUTOFF = datetime(2025, 1, 1, tzinfo=timezone.utc)
"""Graders keep only resources whose meta.lastUpdated is at or before this instant."""
DEFAULT_NOW = datetime(2023, 11, 7, 22, 47, tzinfo=timezone.utc)
"""A task's "now" when its context states none (upstream's default)."""
FLU_NOW = datetime(2024, 1, 9, tzinfo=timezone.utc)
COVID_NOW = datetime(2023, 11, 7, 12, 0, tzinfo=timezone.utc)
CATHETER_NOW = datetime(2023, 11, 11, 9, 0, tzinfo=timezone.utc)
"""The "now" most official catheter tasks state."""
SEEDED_UPDATE_DAY = datetime(2024, 12, 30, 20, 0, tzinfo=timezone.utc)
"""Seeded v2 resources carry meta.lastUpdated on this evening, as the official image's data does."""

BRANCHES: dict[int, tuple[str, ...]] = {
    1: ("no_ct", "stale_ct"),
    2: ("one_heparin", "none", "one_other", "duplicate_with_heparin", "duplicates_without_heparin"),
    3: ("both_windows", "only_6_to_12h", "none_in_12h"),
    4: ("no_catheter", "recent_catheter", "removal_due"),
    5: ("no_diagnosis", "recent_ct", "ct_due"),
    6: ("repeat_high", "borderline", "neither"),
    7: ("no_qtc", "normal_qtc", "prolonged"),
    8: ("no_opioid", "covered", "uncovered"),
    9: ("recent_flu", "stale_flu", "no_flu"),
    10: ("recent_dose", "stale_dose", "no_dose"),
}
"""Every branch the embedded EHR seats, per category. Two grader branches are left out on purpose:
task1's "recent CT" (upstream measures task1's year from the wall clock, so no CT dated before 2025
can be recent under the official grader while it is under the task's own "now"), and task4's
"removal_ordered" (an overdue catheter with an active NUR1373 ServiceRequest: v2's tools have no
ServiceRequest search, so no v2 agent could see the order that makes the task silent)."""

SILENT_BRANCHES: frozenset[tuple[int, str]] = frozenset(
    {
        (2, "one_heparin"),
        (4, "no_catheter"),
        (4, "recent_catheter"),
        (4, "removal_ordered"),
        (5, "no_diagnosis"),
        (5, "recent_ct"),
        (6, "neither"),
        (7, "no_qtc"),
        (7, "normal_qtc"),
        (8, "no_opioid"),
        (8, "covered"),
        (9, "recent_flu"),
        (10, "recent_dose"),
    }
)
"""(category, branch) pairs where the right thing to do is nothing (task3 always needs an answer)."""


def is_silent(category: int, branch: str) -> bool:
    return (category, branch) in SILENT_BRANCHES


_NOW_SENTENCE = re.compile(
    r"it'?s\s+(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2})\s+now", re.IGNORECASE
)
_ANY_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2}")


def stated_now(context: str) -> datetime:
    """The "now" a task's context states, read by upstream's rule: an "It's <timestamp> now"
    sentence, else the last offset timestamp anywhere, else DEFAULT_NOW (a malformed stamp such
    as "2023-08-15:00:00+00:00" therefore falls back to the default)."""
    match = _NOW_SENTENCE.search(context)
    if match is not None:
        return datetime.fromisoformat(match.group(1))
    stamps = _ANY_STAMP.findall(context)
    return datetime.fromisoformat(stamps[-1]) if stamps else DEFAULT_NOW


def category_now(category: int, context: str) -> datetime:
    """The instant a category's grader measures from: the stated now (tasks 3 and 4 state their own;
    9 and 10 state a fixed one), the default for the rest (task1 under the corrected reading)."""
    return stated_now(context)
