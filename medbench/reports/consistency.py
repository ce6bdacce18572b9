"""Refuse to rank runs that were not measured the same way.

Accuracy on a different task set, under another grader mode or protocol is a different
number; putting both in one leaderboard misleads. A run that does not record a mode (the
upstream harness does not) counts as "unrecorded", which differs from any recorded value.
"""

from __future__ import annotations

from medbench.reports.load import ModelResults, ReportError

CHECKED_MODES = ("task_set_sha256", "grader", "protocol")
UNRECORDED = "unrecorded"


class MixedRunsError(ReportError):
    """Runs with different task sets, grader modes or protocols were asked to share a table."""


def mode_differences(models: list[ModelResults], modes: tuple[str, ...] = CHECKED_MODES) -> list[str]:
    """One line per checked mode whose value is not the same for every run, naming the runs."""
    lines = []
    for mode in modes:
        groups: dict[str, list[str]] = {}
        for model in models:
            value = model.modes.get(mode)
            groups.setdefault(UNRECORDED if value in (None, "") else str(value), []).append(model.slug)
        if len(groups) > 1:
            parts = "; ".join(f"{value!r} in {', '.join(slugs)}" for value, slugs in sorted(groups.items()))
            lines.append(f"{mode} differs: {parts}")
    return lines


def check_consistent(
    models: list[ModelResults], allow_mixed: bool = False, modes: tuple[str, ...] = CHECKED_MODES
) -> list[str]:
    """Raise MixedRunsError on differing modes unless allow_mixed; return the differences."""
    differences = mode_differences(models, modes)
    if differences and not allow_mixed:
        raise MixedRunsError(
            "refusing to compare runs measured differently:\n  "
            + "\n  ".join(differences)
            + "\nMove the odd runs to another results directory, or pass --allow-mixed to compare anyway."
        )
    return differences


def check_comparable_pair(a: ModelResults, b: ModelResults, allow_mixed: bool = False) -> list[str]:
    """`analyze --compare A B`: a side-by-side may differ in protocol (that is what it shows, e.g. one
    model in the text and the tools protocol); the task set and grader must agree unless allow_mixed."""
    return check_consistent([a, b], allow_mixed, tuple(m for m in CHECKED_MODES if m != "protocol"))
