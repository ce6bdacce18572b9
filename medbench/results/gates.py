"""CI gates: minimum accuracies that decide the exit status instead of the failed-test count.

A run with incorrect tasks still passes a gate when accuracy is high enough; a run whose
harness failed (an attempt with no verdict) never does, whatever the accuracy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TASK_GATE = re.compile(r"^(task(?:[1-9]|10))=(.+)$")


class GateSpecError(ValueError):
    """A gate option that cannot be read; the message shows the accepted form."""


@dataclass(frozen=True)
class Gate:
    """Accuracy of `category` (None: the whole run) must be at least `threshold` (a fraction)."""

    category: str | None
    threshold: float

    def describe(self) -> str:
        scope = self.category or "overall"
        return f"{scope} accuracy >= {self.threshold:.1%}"


def parse_threshold(text: str, option: str = "--min-accuracy") -> float:
    """`0.9` or `90%` -> 0.9."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise GateSpecError(f"{option} {text!r}: expected a fraction like 0.9 or a percentage like 90%") from None
    if not 0.0 <= value <= 1.0:
        raise GateSpecError(f"{option} {text!r}: must lie between 0 and 1 (or 0% and 100%)")
    return value


def parse_task_gate(text: str) -> Gate:
    """`task5=0.8` -> Gate("task5", 0.8)."""
    match = _TASK_GATE.match(text.strip())
    if not match:
        raise GateSpecError(f"--min-task-accuracy {text!r}: expected taskN=X with N in 1..10, e.g. task5=0.8")
    return Gate(match.group(1), parse_threshold(match.group(2), "--min-task-accuracy"))


def failed_gates(summary: dict[str, Any], gates: list[Gate], *, unrecorded: int = 0) -> list[str]:
    """One line per gate that does not hold; empty when every gate holds (or there are none).

    `unrecorded` counts attempts of this session that ended without a recorded verdict (setup
    errors, crashed workers); with infrastructure statuses in the records, they fail every gated run.
    """
    if not gates:
        return []
    lines: list[str] = []
    broken = int(summary.get("infrastructure_failures", 0)) + unrecorded
    if broken:
        lines.append(
            f"{broken} task attempt(s) ended without a model verdict (infrastructure failure: "
            "setup error, endpoint error or lost worker); fix the harness or endpoint and rerun with --resume"
        )
    for gate in gates:
        if gate.category is None:
            scope = summary
        else:
            scope = summary.get("task_breakdown", {}).get(gate.category, {})
        total, correct = int(scope.get("total", 0)), int(scope.get("correct", 0))
        if not total:
            lines.append(f"{gate.describe()}: no {gate.category or 'task'} attempts recorded")
        elif correct < gate.threshold * total - 1e-9:
            lines.append(f"{gate.describe()}: got {correct / total:.1%} ({correct}/{total})")
    return lines
