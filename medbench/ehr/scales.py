"""Named population sizes: how many patients and how dense their histories are.

The three sizes share one generator; only these knobs differ, so a branch seen at `small`
behaves the same at `full`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleSpec:
    name: str
    data_patients: int
    demographic_only_patients: int
    history_years: float
    stays_per_year: float
    outpatient_interval_days: float
    vitals_interval_hours: int


SCALES: dict[str, ScaleSpec] = {
    "small": ScaleSpec("small", 30, 10, 1.0, 0.5, 150.0, 12),
    "medium": ScaleSpec("medium", 100, 50, 3.0, 0.5, 75.0, 6),
    "full": ScaleSpec("full", 100, 400, 12.0, 1.7, 60.0, 3),
}


def scale_spec(scale: str) -> ScaleSpec:
    """Look a scale up by name, naming the valid choices when it is unknown."""
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown EHR scale {scale!r}; choose one of {', '.join(SCALES)}") from None
