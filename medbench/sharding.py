"""Shards: the I-th of N deterministic slices of a run's selected attempts (task set x repeats).

A job scheduler the user already has (a CI matrix, a Slurm array, a Kubernetes indexed Job)
starts N processes; each runs `--shard I/N` into a run folder of its own, and
`python -m medbench.results merge` joins the folders into the run one process would have
written. Every process computes the same slices from the same selection, with nothing but the
selection as input (no clock, no host, no randomness), so two machines never disagree about
which shard owns an attempt.

Slices are balanced by category and by expected cost: each category's attempts are dealt round
robin (so a category's count differs by at most one between shards), starting with the shards
that carry the least expected cost so far (so the extra attempts of one category land where
the work is lightest). Shard numbers are 1-based: `--shard 1/3`, `2/3`, `3/3`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Expected cost of one attempt per category, in tenths of a model call: the reference model's
# mean calls per attempt on the generated task set (`python -m pytest tests_bench
# --model=reference`, runs.jsonl `model_calls` by category). Categories that may order after
# reading the chart (5, 9, 10) take more turns; only the proportions matter. A category not
# listed (a task file's own) costs the mean.
EXPECTED_CALLS = {1: 20, 2: 20, 3: 20, 4: 20, 5: 24, 6: 20, 7: 20, 8: 20, 9: 27, 10: 27}
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
AUTO = "auto"
# The job-array variables `--shard auto` reads (and only these).
SLURM_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")
SLURM_STEP = "SLURM_ARRAY_TASK_STEP"
KUBERNETES_INDEX = "JOB_COMPLETION_INDEX"


class ShardSpecError(ValueError):
    """A `--shard` value that cannot be read; the message shows the accepted forms."""


class Attempt(Protocol):
    """What slicing needs to know of an attempt (`medbench.runner.session.Case` is one)."""

    @property
    def task_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def category(self) -> int: ...


@dataclass(frozen=True)
class Shard:
    """The `index`-th (1-based) of `count` slices."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ShardSpecError(f"--shard {self.index}/{self.count}: I must lie between 1 and N (1/3, 2/3, 3/3)")

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str | None, environ: Mapping[str, str]) -> Shard | None:
    """`I/N` (1-based), `auto` (a Slurm array's variables), or None/empty for no sharding."""
    if text is None or not text.strip():
        return None
    if text.strip().lower() == AUTO:
        return shard_from_job_array(environ)
    match = _SHARD.match(text)
    if not match:
        raise ShardSpecError(
            f"--shard {text!r}: expected I/N with 1 <= I <= N (e.g. --shard 2/3), or --shard auto "
            "inside a Slurm job array"
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_job_array(environ: Mapping[str, str]) -> Shard:
    """`--shard auto`: the shard a Slurm array job sets, I = (ID - MIN) / STEP + 1 and N = COUNT.

    Kubernetes indexed Jobs set only the index (JOB_COMPLETION_INDEX, 0-based), not the count,
    and CI matrices set nothing: those pass `--shard I/N` themselves (docs/sharding.md)."""
    if all(name in environ for name in SLURM_VARIABLES):
        try:
            task_id, first, count = (int(environ[name]) for name in SLURM_VARIABLES)
            step = int(environ.get(SLURM_STEP) or 1)
        except ValueError:
            raise ShardSpecError(
                "--shard auto: the SLURM_ARRAY_TASK_* variables are not integers: "
                + ", ".join(f"{n}={environ.get(n)!r}" for n in (*SLURM_VARIABLES, SLURM_STEP))
            ) from None
        offset, rest = divmod(task_id - first, step if step > 0 else 1)
        if rest:
            raise ShardSpecError(
                f"--shard auto: SLURM_ARRAY_TASK_ID={task_id} is not on the array's step {step} from {first}"
            )
        return Shard(offset + 1, count)
    if KUBERNETES_INDEX in environ:
        raise ShardSpecError(
            f"--shard auto: a Kubernetes indexed Job sets {KUBERNETES_INDEX} (0-based) but not the "
            "number of completions; pass --shard $(( JOB_COMPLETION_INDEX + 1 ))/N instead"
        )
    raise ShardSpecError(
        "--shard auto reads a Slurm job array's SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and "
        "SLURM_ARRAY_TASK_COUNT, and none are set; pass --shard I/N (e.g. from a CI matrix)"
    )


def assign_shards(attempts: Sequence[Attempt], count: int) -> list[int]:
    """The shard (1-based) of each attempt, in the order given: per category, round robin over the
    shards ordered by the expected cost they carry so far (ties: the lower shard number)."""
    loads = [0] * count
    shards = [0] * len(attempts)
    by_category: dict[int, list[int]] = {}
    for position, attempt in enumerate(attempts):
        by_category.setdefault(int(attempt.category), []).append(position)
    mean_cost = round(sum(EXPECTED_CALLS.values()) / len(EXPECTED_CALLS))
    for category in sorted(by_category):
        cost = EXPECTED_CALLS.get(category, mean_cost)
        order = sorted(range(count), key=lambda shard: (loads[shard], shard))
        for dealt, position in enumerate(by_category[category]):
            shard = order[dealt % count]
            shards[position] = shard + 1
            loads[shard] += cost
    return shards


def shard_slice(attempts: Sequence[Attempt], shard: Shard) -> list[Any]:
    """The attempts of one shard, in the selection's order."""
    owners = assign_shards(attempts, shard.count)
    return [attempt for attempt, owner in zip(attempts, owners) if owner == shard.index]


def selection_record(task_set_sha256: str, repeats: int, attempts: Sequence[Attempt]) -> dict[str, Any]:
    """What run.json keeps of the whole selection (every shard of one run writes the same): its
    sha256, its size and its tasks in order, so a merge can recompute every shard's slice."""
    tasks: dict[str, int] = {}
    for attempt in attempts:
        tasks.setdefault(str(attempt.task_id), int(attempt.category))
    attempt_keys = [[str(a.task_id), int(a.attempt)] for a in attempts]
    digest = hashlib.sha256(
        json.dumps(
            {"task_set_sha256": task_set_sha256, "repeats": repeats, "attempts": attempt_keys}, separators=(",", ":")
        ).encode()
    ).hexdigest()
    return {
        "sha256": digest,
        "attempts": len(attempt_keys),
        "repeats": repeats,
        "tasks": [[task_id, category] for task_id, category in tasks.items()],
    }


@dataclass(frozen=True)
class SelectedAttempt:
    """An attempt rebuilt from a recorded selection (what merge slices)."""

    task_id: str
    attempt: int
    category: int


def selected_attempts(selection: Mapping[str, Any]) -> list[SelectedAttempt]:
    """The selection's attempts in run order (every task, attempts 1..repeats)."""
    repeats = int(selection.get("repeats", 1))
    return [
        SelectedAttempt(str(task_id), attempt, int(category))
        for task_id, category in selection.get("tasks", [])
        for attempt in range(1, repeats + 1)
    ]
