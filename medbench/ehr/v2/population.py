"""The EHR a v2 run serves: the v1 synthetic population as background, plus the v2 cohort.

The background is the unseated v1 population of the same seed and scale (other patients, labs,
vitals, orders: what else a hospital's FHIR server holds); any background patient whose MRN a v2
patient takes is left out, resources and all. Each v2 patient adds its Patient and its chart's
resources, stored in a shuffled (not date-sorted) order, with ids above every background id."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock

from medbench.ehr import resources as v1_resources
from medbench.ehr.demographics import source_tag
from medbench.ehr.population import GENERATOR_VERSION, Population, build_population
from medbench.ehr.v2.branches import SEEDED_UPDATE_DAY
from medbench.ehr.v2.charts import chart_entries
from medbench.ehr.v2.cohort import V2Cohort, build_v2_cohort
from medbench.ehr.v2.seating import V2Seating
from medbench.fhir.searchparams import patient_of
from medbench.fhir.store import SCHEMA_VERSION, build_database
from medbench.tasks.official import cache_root

V2_GENERATOR_VERSION = "3"
"""Bump whenever v2 charts, cohorts or their resources change (part of the database name)."""
FIRST_V2_ID = 9_000_000


def _rng(seed: int, stream: str, mrn: str) -> random.Random:
    digest = hashlib.sha256(f"medbench-ehr-v2-data|{seed}|{stream}|{mrn}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class V2Population:
    """The background population and the v2 cohort, as one stream of resources."""

    def __init__(self, background: Population, cohort: V2Cohort) -> None:
        self.background = background
        self.cohort = cohort

    def iter_resources(self) -> Iterator[dict[str, Any]]:
        taken = self.cohort.mrns
        for resource in self.background.iter_resources():
            if patient_of(resource) not in taken:
                yield resource
        seed = self.cohort.seed
        for patient in self.cohort.patients:
            rng = _rng(seed, "patient-meta", patient.mrn)
            yield v1_resources.patient(
                patient.demographics, SEEDED_UPDATE_DAY - timedelta(minutes=rng.randint(1, 600)), source_tag(rng)
            )
        next_id = FIRST_V2_ID
        for patient in self.cohort.patients:
            rng = _rng(seed, "chart", patient.mrn)
            entries = chart_entries(rng, patient.mrn, patient.chart, self.cohort.scale)
            source = source_tag(rng)
            # meta.lastUpdated rises with clinical time (one load on the evening of 2024-12-30)
            updated_at = {}
            moment = SEEDED_UPDATE_DAY
            for index in sorted(range(len(entries)), key=lambda i: entries[i][0]):
                moment += timedelta(seconds=rng.randint(1, 20), milliseconds=rng.randint(0, 999))
                updated_at[index] = moment
            order = list(range(len(entries)))
            rng.shuffle(order)
            for index in order:
                yield entries[index][1](str(next_id), updated_at[index], source)
                next_id += 1


def v2_population(seed: int = 0, scale: str = "small", seating: V2Seating | None = None) -> V2Population:
    return V2Population(build_population(seed=seed, scale=scale), build_v2_cohort(seed, scale, seating))


def v2_database_path(
    seed: int = 0, scale: str = "small", seating: V2Seating | None = None, cache_dir: Path | str | None = None
) -> Path:
    suffix = f"-{seating.digest[:16]}" if seating is not None else ""
    name = f"ehr-v2.{V2_GENERATOR_VERSION}-{GENERATOR_VERSION}.db{SCHEMA_VERSION}-{scale}-{seed}{suffix}.sqlite"
    return cache_root(cache_dir) / "ehr" / name


def ensure_v2_database(
    seed: int = 0,
    scale: str = "small",
    seating: V2Seating | None = None,
    cache_dir: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Path of the built v2 database for these inputs, building it first if it is not cached
    (file lock + atomic rename, as for the v1 database)."""
    path = v2_database_path(seed, scale, seating, cache_dir)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.is_file():
            resources = v2_population(seed, scale, seating).iter_resources()
            build_database(path, _counted(resources, progress) if progress else resources)
    return path


def _counted(resources: Iterable[dict[str, Any]], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    count = 0
    for count, resource in enumerate(resources, start=1):
        if count % 10_000 == 0:
            progress(count)
        yield resource
    progress(count)
