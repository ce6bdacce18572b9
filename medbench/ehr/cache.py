"""Build the synthetic EHR's SQLite database once per (generator, seed, scale, seating) and reuse it.

Several pytest-xdist workers may ask for the same database at once: a file lock makes one of
them build while the others wait, and `build_database` renames the finished file into place,
so nobody ever opens a half-written database. The file name carries everything that changes
its content (generator version, store schema version, scale, seed, seating digest), so a
stale cache is never reused: a new version simply builds a new file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from medbench.ehr.version import GENERATOR_VERSION
from medbench.fhir.store import SCHEMA_VERSION, build_database
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
            if population is None:
                from medbench.ehr.population import build_population

                population = build_population(seed=seed, scale=scale, seating=seating)
            resources = population.iter_resources()
            build_database(path, _counted(resources, progress) if progress else resources)
    return path


PROGRESS_EVERY = 10_000


def _counted(resources: Iterable[dict[str, Any]], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    count = 0
    for count, resource in enumerate(resources, start=1):
        if count % PROGRESS_EVERY == 0:
            progress(count)
        yield resource
    progress(count)
