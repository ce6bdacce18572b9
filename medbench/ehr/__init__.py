"""The synthetic EHR: a seeded, MedAgentBench-shaped patient population (see docs/DESIGN.md).

The names below load on first use: importing a light module of this package (the cache's
database path, the seating, the generator version) must not import the generator and Faker."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GENERATOR_VERSION": "medbench.ehr.version",
    "PatientRecord": "medbench.ehr.population",
    "Population": "medbench.ehr.population",
    "build_population": "medbench.ehr.population",
    "SCALES": "medbench.ehr.scales",
    "Seating": "medbench.ehr.seating",
}

__all__ = ["GENERATOR_VERSION", "SCALES", "PatientRecord", "Population", "Seating", "build_population"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
