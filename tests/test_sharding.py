"""Shards: `--shard I/N` cuts the selected attempts into N deterministic, balanced slices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from medbench.sharding import (
    EXPECTED_CALLS,
    SelectedAttempt,
    Shard,
    ShardSpecError,
    assign_shards,
    parse_shard,
    selected_attempts,
    selection_record,
    shard_slice,
)


def attempts(tasks_per_category: int = 30, repeats: int = 1, categories: range = range(1, 11)) -> list[SelectedAttempt]:
    return [
        SelectedAttempt(f"task{c}_{n}", attempt, c)
        for c in categories
        for n in range(1, tasks_per_category + 1)
        for attempt in range(1, repeats + 1)
    ]


def test_i_of_n_is_one_based() -> None:
    assert parse_shard("2/3", {}) == Shard(2, 3)
    assert parse_shard(" 1 / 1 ", {}) == Shard(1, 1)
    assert parse_shard(None, {}) is None and parse_shard("", {}) is None


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/3/5"])
def test_a_shard_outside_one_to_n_or_malformed_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ShardSpecError, match="I/N|between 1 and N"):
        parse_shard(text, {})


def test_auto_reads_a_slurm_array_whatever_its_first_index_and_step() -> None:
    slurm = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert parse_shard("auto", slurm) == Shard(1, 3)
    assert parse_shard("auto", {**slurm, "SLURM_ARRAY_TASK_ID": "2"}) == Shard(3, 3)
    one_based = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert parse_shard("auto", one_based) == Shard(2, 3)
    stepped = {
        "SLURM_ARRAY_TASK_ID": "14",
        "SLURM_ARRAY_TASK_MIN": "10",
        "SLURM_ARRAY_TASK_COUNT": "3",
        "SLURM_ARRAY_TASK_STEP": "2",
    }
    assert parse_shard("AUTO", stepped) == Shard(3, 3)


def test_auto_in_a_kubernetes_indexed_job_asks_for_the_count_it_cannot_know() -> None:
    with pytest.raises(ShardSpecError, match=r"JOB_COMPLETION_INDEX.*--shard \$\(\( JOB_COMPLETION_INDEX \+ 1 \)\)/N"):
        parse_shard("auto", {"JOB_COMPLETION_INDEX": "0"})


def test_auto_outside_a_job_array_names_the_variables_it_reads() -> None:
    with pytest.raises(ShardSpecError, match="SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT"):
        parse_shard("auto", {"GITHUB_ACTIONS": "true"})


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_the_shards_partition_the_selection(count: int) -> None:
    selection = attempts(repeats=2)
    slices = [shard_slice(selection, Shard(index, count)) for index in range(1, count + 1)]
    keys = [(a.task_id, a.attempt) for piece in slices for a in piece]
    assert sorted(keys) == sorted((a.task_id, a.attempt) for a in selection)
    assert len(set(keys)) == len(keys)
    for piece in slices:  # each slice keeps the selection's order
        assert piece == [a for a in selection if a in set(piece)]


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_every_category_is_spread_evenly_and_the_expected_cost_stays_within_one_attempt(count: int) -> None:
    selection = attempts(tasks_per_category=30)
    owners = assign_shards(selection, count)
    for category in range(1, 11):
        per_shard = Counter(owner for a, owner in zip(selection, owners) if a.category == category)
        sizes = [per_shard.get(index, 0) for index in range(1, count + 1)]
        assert max(sizes) - min(sizes) <= 1, (category, sizes)
    costs = Counter()
    for a, owner in zip(selection, owners):
        costs[owner] += EXPECTED_CALLS[a.category]
    assert max(costs.values()) - min(costs.values()) <= max(EXPECTED_CALLS.values())


def test_an_uneven_task_file_with_an_unknown_category_is_still_partitioned() -> None:
    selection = attempts(tasks_per_category=1, categories=range(1, 4)) + [SelectedAttempt("mine_1", 1, 42)]
    owners = assign_shards(selection, 3)
    assert sorted(Counter(owners).values()) == [1, 1, 2]


def test_slices_are_the_same_in_every_process_whatever_its_hash_seed() -> None:
    script = (
        "import json; from medbench.sharding import SelectedAttempt, assign_shards\n"
        "s = [SelectedAttempt(f'task{c}_{n}', a, c) for c in range(1, 11) for n in range(1, 31) for a in (1, 2)]\n"
        "print(json.dumps(assign_shards(s, 3)))"
    )
    results = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "12345")
    }
    assert len(results) == 1
    assert json.loads(results.pop()) == assign_shards(attempts(repeats=2), 3)


def test_the_selection_record_rebuilds_the_same_attempts_and_names_them_by_hash() -> None:
    selection = attempts(tasks_per_category=3, repeats=2)
    record = selection_record("abc", 2, selection)
    assert record["attempts"] == 60 and record["repeats"] == 2
    assert selected_attempts(record) == selection
    assert selection_record("abc", 2, selection)["sha256"] == record["sha256"]
    assert selection_record("abd", 2, selection)["sha256"] != record["sha256"]
    assert selection_record("abc", 2, selection[:-2])["sha256"] != record["sha256"]
