"""Build the synthetic EHR's SQLite database once per (generator, seed, scale, seating) and reuse it.

Several pytest-xdist workers may ask for the same database at once: a file lock makes one of
them build while the others wait, and `build_database` renames the finished file into place,
so nobody ever opens a half-written database. The file name carries everything that changes
its content (generator version, store schema version, scale, seed, seating digest), so a
stale cache is never reused: a new version simply builds a new file.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from medbench.ehr.scales import scale_spec
from medbench.ehr.version import GENERATOR_VERSION
from medbench.fhir.store import SCHEMA_VERSION, build_database, build_part
from medbench.tasks.official import cache_root

if TYPE_CHECKING:
    from medbench.ehr.population import Population
    from medbench.ehr.seating import Seating


def database_path(
    seed: int = 0, scale: str = "small", seating: Seating | None = None, cache_dir: Path | str | None = None
) -> Path:
    """Where the database for these inputs lives (whether or not it is built yet)."""
    suffix = f"-{seating.digest[:16]}" if seating is not None else ""
    name = f"ehr-{GENERATOR_VERSION}.db{SCHEMA_VERSION}-{scale}-{seed}{suffix}.sqlite"
    return cache_root(cache_dir) / "ehr" / name


def ensure_database(
    seed: int = 0,
    scale: str = "small",
    seating: Seating | None = None,
    cache_dir: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
    population: Population | None = None,
) -> Path:
    """Path of the built database for these inputs, building it first if it is not cached.

    `progress` is called with the number of resources written so far while a build runs (a
    full-scale build takes a minute; the caller shows it instead of staying silent). `population`
    is the one built from these inputs, when the caller already has it (it is not built twice)."""
    path = database_path(seed, scale, seating, cache_dir)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.is_file():
            _build(path, seed, scale, seating, progress, population)
    return path


def _build(
    path: Path,
    seed: int,
    scale: str,
    seating: Seating | None,
    progress: Callable[[int], None] | None,
    population: Population | None,
    parts: int | None = None,
) -> None:
    """Build the database in `parts` shares of the storage order: this process writes the first
    while other processes write the rest into part files, appended at the end (see
    `build_database`). Each share is generated, serialised and indexed where it is written, so a
    large build uses every core; the result is the same file a single process writes."""
    from medbench.ehr.population import build_population

    if population is None:
        population = build_population(seed=seed, scale=scale, seating=seating)
    parts = parts or build_parts(scale)
    resources = population.iter_resources(0, parts)
    counted = _counted(resources, progress) if progress else resources
    if parts == 1:
        build_database(path, counted)
        return
    spawn = multiprocessing.get_context("spawn")  # never fork a process that may run threads
    with (
        tempfile.TemporaryDirectory(prefix=path.name + ".parts-", dir=path.parent) as scratch,
        ProcessPoolExecutor(max_workers=parts - 1, mp_context=spawn) as pool,
    ):
        later = [
            pool.submit(_build_part, Path(scratch) / f"part{part}.sqlite", seed, scale, seating, part, parts)
            for part in range(1, parts)
        ]
        total = build_database(path, counted, later_parts=[future.result for future in later])
    if progress is not None:  # the count above was this process's share only
        progress(total)


def build_parts(scale: str) -> int:
    """Into how many processes a build of `scale` is split: one per core (two at most) for the
    large scales; small builds are quicker than starting another process."""
    spec = scale_spec(scale)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(2, cores) if spec.data_patients * spec.history_years >= 1000 else 1


def _build_part(path: Path, seed: int, scale: str, seating: Seating | None, part: int, parts: int) -> Path:
    """In a process of its own: the population again (cheap, deterministic), then its share."""
    from medbench.ehr.population import build_population

    population = build_population(seed=seed, scale=scale, seating=seating)
    build_part(path, population.iter_resources(part, parts))
    return path


PROGRESS_EVERY = 10_000


def _counted(resources: Iterable[dict[str, Any]], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    count = 0
    for count, resource in enumerate(resources, start=1):
        if count % PROGRESS_EVERY == 0:
            progress(count)
        yield resource
    progress(count)
