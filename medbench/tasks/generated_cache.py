"""The generated task set kept in the medbench cache, so a session draws it without rebuilding the EHR.

Drawing the 300 generated tasks needs the synthetic population (demographics, timelines and
task labs of every patient): most of a warm session's start-up. The tasks are a pure function
of the EHR seed and scale, the task seed, and the code and data that generate them, so they are
kept as JSON under `<cache>/tasks/`, named by all of these: the file name carries a digest of
the sources of `medbench/ehr`, `medbench/tasks`, `medbench/clock.py`, the data files and
Faker's version, so any change to the generators (or a Faker upgrade) misses the cache and
draws afresh; nothing has to remember to bump a version. The prompt and function catalog are
not cached: they are read from the package every time, as for every other task set.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medbench.tasks.generated import generate_task_set, generated_presentation
from medbench.tasks.official import cache_root
from medbench.tasks.task import Task, TaskSet

if TYPE_CHECKING:
    from medbench.ehr.population import Population

_PACKAGE = Path(__file__).resolve().parents[1]
# What decides the generated tasks: the EHR generator, the task generator, the clock and data.
_SOURCES = ("ehr", "tasks", "clock.py", "data")


@functools.cache
def generator_digest() -> str:
    """A digest of everything the generated task set depends on besides its seeds and scale."""
    digest = hashlib.sha256(f"faker {importlib.metadata.version('faker')}\n".encode())
    for name in _SOURCES:
        root = _PACKAGE / name
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file() and path.suffix in (".py", ".json", ".jsonl", ".txt", ".toml"):
                digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_task_set_path(ehr_seed: int, ehr_scale: str, task_seed: int, cache_dir: str | Path | None = None) -> Path:
    name = f"generated-{ehr_scale}-ehr{ehr_seed}-tasks{task_seed}-{generator_digest()}.json"
    return cache_root(cache_dir) / "tasks" / name


def load_generated_task_set(
    ehr_seed: int, ehr_scale: str, task_seed: int, cache_dir: str | Path | None = None
) -> tuple[TaskSet, Population | None]:
    """The generated task set, from the cache when it holds it (then no population is built:
    None), else drawn from a freshly built population, which is returned too (so the caller
    can build the database from it instead of building it twice) and the tasks cached."""
    path = cached_task_set_path(ehr_seed, ehr_scale, task_seed, cache_dir)
    cached = _read(path)
    if cached is not None:
        return cached, None
    from medbench.ehr.population import build_population

    population = build_population(seed=ehr_seed, scale=ehr_scale)
    task_set = generate_task_set(task_seed, population)
    _write(path, task_set)
    return task_set, population


def _read(path: Path) -> TaskSet | None:
    """The cached task set, or None when absent or unreadable (it is then drawn again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tasks = tuple(
            Task(t["id"], t["category"], t["instruction"], t["context"], t.get("eval_MRN"), t.get("sol"))
            for t in data["tasks"]
        )
        name = data["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    shown = generated_presentation()
    return TaskSet(name, tasks, shown.prompt_template, shown.functions, flavour="generated")


def _write(path: Path, task_set: TaskSet) -> None:
    """Write atomically (temporary file, then rename): concurrent sessions never read half a file.
    A cache that cannot be written costs the next session its start-up time, nothing else."""
    data: dict[str, Any] = {
        "name": task_set.name,
        "tasks": [{**task.to_json(), "category": task.category} for task in task_set.tasks],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
