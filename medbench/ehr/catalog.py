"""The clinical vocabulary of the synthetic EHR, read from medbench/data/ehr_catalog.json.

Kept as data so that codes, units and plausible ranges can be reviewed (and extended) without
touching the generator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources.abc import Traversable
from typing import Any

from medbench.package_data import data_file

CATALOG_PATH = data_file("ehr_catalog.json")


@dataclass(frozen=True)
class Measure:
    """A numeric lab or vital: where its values usually lie and how precisely they are written."""

    code: str
    display: str
    unit: str
    mean: float
    sd: float
    low: float
    high: float
    decimals: int

    def clip(self, value: float) -> float:
        """Clamp to the plausible range and round to the written precision (ints stay ints)."""
        value = min(max(value, self.low), self.high)
        return round_value(value, self.decimals)


def round_value(value: float, decimals: int) -> float:
    """The exact number the JSON will carry: an int for whole-number measures, else a rounded float."""
    if decimals == 0:
        return int(round(value))
    return round(value, decimals)


@dataclass(frozen=True)
class Catalog:
    labs: dict[str, Measure]
    panels: dict[str, tuple[str, ...]]
    vitals: dict[str, Measure]
    blood_pressure: dict[str, Any]
    conditions: tuple[dict[str, Any], ...]
    medications: tuple[dict[str, Any], ...]
    procedures: tuple[dict[str, Any], ...]
    race: tuple[dict[str, Any], ...]
    ethnicity: tuple[dict[str, Any], ...]


def _measure(code: str, spec: dict[str, Any]) -> Measure:
    return Measure(
        code, spec["display"], spec["unit"], spec["mean"], spec["sd"], spec["low"], spec["high"], spec["decimals"]
    )


@lru_cache(maxsize=1)
def load_catalog(path: Traversable = CATALOG_PATH) -> Catalog:
    """Parse the catalog once per process; a missing file is a broken checkout, so say where it should be."""
    if not path.is_file():
        raise FileNotFoundError(
            f"EHR catalog not found at {path}; it ships inside the medbench package (medbench/data/ehr_catalog.json)"
        )
    raw = json.loads(path.read_text(encoding="utf-8"))
    vitals = {code: _measure(code, spec) for code, spec in raw["vitals"].items() if spec.get("kind") != "bp"}
    return Catalog(
        labs={code: _measure(code, spec) for code, spec in raw["labs"].items()},
        panels={name: tuple(codes) for name, codes in raw["panels"].items()},
        vitals=vitals,
        blood_pressure=raw["vitals"]["BP"],
        conditions=tuple(raw["conditions"]),
        medications=tuple(raw["medications"]),
        procedures=tuple(raw["procedures"]),
        race=tuple(raw["race"]),
        ethnicity=tuple(raw["ethnicity"]),
    )
