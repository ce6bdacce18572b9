"""Task sets: one interface over the generated set, the official set and any task file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from medbench.tasks.generated import GENERATOR_VERSION, branch_counts, generate_task_set
from medbench.tasks.generated_v2 import generate_v2_task_set
from medbench.tasks.official import (
    OfficialAssetsError,
    fetch_official,
    load_official,
    official_presentation,
)
from medbench.tasks.task import Presentation, Task, TaskSet
from medbench.tasks.task_file import TaskFileError, load_task_file, write_task_file
from medbench.tasks.v2 import V2AssetsError, fetch_v2, load_v2

if TYPE_CHECKING:
    from medbench.ehr.population import Population

__all__ = [
    "GENERATOR_VERSION",
    "OfficialAssetsError",
    "Presentation",
    "Task",
    "TaskFileError",
    "TaskSet",
    "branch_counts",
    "fetch_official",
    "generate_task_set",
    "load_official",
    "load_task_file",
    "load_task_set",
    "official_presentation",
    "write_task_file",
    "V2AssetsError",
    "fetch_v2",
    "generate_v2_task_set",
    "load_v2",
]


def load_task_set(
    spec: str = "generated",
    *,
    task_seed: int = 0,
    population: Population | None = None,
    official_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    file_flavour: str = "generated",
    ehr_seed: int = 0,
    ehr_scale: str = "small",
) -> TaskSet:
    """Resolve `--tasks`: "generated" (default), "official", "v2" (the official MedAgentBench v2
    tasks), "generated-v2" (ours, drawn from the v2 cohort of `ehr_seed`/`ehr_scale`), or a path to
    a task file.

    Generated tasks are drawn from `population`, the synthetic EHR the environment serves (the
    caller builds it, `medbench.ehr.build_population`, and may reuse it for the database). A task
    file is shown with our prompt unless `file_flavour` is "official".
    """
    if spec == "generated":
        if population is None:
            raise ValueError(
                "the generated task set is drawn from a synthetic EHR: pass population=build_population(seed, scale)"
            )
        return generate_task_set(task_seed, population)
    if spec == "official":
        return load_official(official_dir=official_dir, cache_dir=cache_dir)
    if spec == "v2":
        return load_v2(official_dir=official_dir, cache_dir=cache_dir)
    if spec == "generated-v2":
        from medbench.ehr.v2.cohort import build_v2_cohort

        return generate_v2_task_set(task_seed, build_v2_cohort(ehr_seed, ehr_scale))
    path = Path(spec)
    if not path.exists():
        raise TaskFileError(
            f"--tasks={spec!r}: expected 'generated', 'official', 'v2', 'generated-v2' or the path of a task file; "
            "no such file"
        )
    if file_flavour == "official":
        return load_task_file(path, official_presentation(official_dir=official_dir, cache_dir=cache_dir))
    if file_flavour != "generated":
        raise ValueError(f"unknown task file flavour {file_flavour!r}; use 'generated' or 'official'")
    return load_task_file(path)
