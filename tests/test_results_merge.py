"""`python -m medbench.results merge`: what it refuses, naming the difference, and what it keeps.

The parts are real runs of the pytest-free runner (reference model, small EHR, a few tasks);
refusals that need a part no run would write (another fingerprint, a foreign line) edit one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medbench.results.__main__ import main as results_main
from medbench.results.folder_lock import SessionLock
from medbench.results.merge import MergeRefused, merge_runs
from medbench.results.writer import RunFolder, read_jsonl
from medbench.runner import run_benchmark
from medbench.settings import Settings
from medbench.sharding import Shard

TASKS = ("task1_1", "task2_1", "task3_1", "task5_1", "task9_1", "task10_1")


def run_shard(root: Path, index: int | None, count: int = 2, **changes) -> Path:
    settings = Settings(
        model="reference",
        ehr_scale="small",
        task_ids=TASKS,
        results_dir=root / f"s{index}",
        shard=Shard(index, count) if index else None,
        repeats=2,
        **changes,
    )
    assert run_benchmark(settings) is not None
    return root / f"s{index}" / "reference"


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("merge")
    return run_shard(root, 1), run_shard(root, 2)


def test_shards_of_a_task_id_selection_with_repeats_merge_in_run_order(shards, tmp_path: Path) -> None:
    result = merge_runs(list(shards), tmp_path / "out")
    runs = read_jsonl(tmp_path / "out" / "runs.jsonl")
    assert [(r["task_id"], r["attempt"]) for r in runs] == [(t, a) for t in TASKS for a in (1, 2)]
    # As a single --task-id run's summary: 12 attempts recorded of the task set's 600.
    assert result.summary["total"] == 12 and result.summary["expected_total"] == 600
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [part["shard"] for part in manifest["merged"]["from"]] == ["1/2", "2/2"]
    assert "shard" not in manifest["identity"]


def test_the_order_of_the_folders_on_the_command_line_does_not_matter(shards, tmp_path: Path) -> None:
    merge_runs(list(shards), tmp_path / "a")
    merge_runs(list(reversed(shards)), tmp_path / "b")
    assert (tmp_path / "a" / "runs.jsonl").read_bytes() == (tmp_path / "b" / "runs.jsonl").read_bytes()
    assert (tmp_path / "a" / "transcripts.jsonl").read_bytes() == (tmp_path / "b" / "transcripts.jsonl").read_bytes()


def test_a_run_of_another_model_or_modes_is_refused_naming_the_field(shards, tmp_path: Path) -> None:
    other = run_shard(tmp_path, 2, strip_think=True)
    with pytest.raises(MergeRefused, match=r"not part of the same run.*strip_think: False -> True"):
        merge_runs([shards[0], other], tmp_path / "out")


def test_another_environment_fingerprint_is_refused(shards, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("run.json", "transcripts.jsonl"):
        (copy / name).write_bytes((shards[1] / name).read_bytes())
    lines = read_jsonl(shards[1] / "runs.jsonl")
    lines[0]["environment_fingerprint"] = "embedded:another-ehr"
    (copy / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(MergeRefused, match="environment fingerprints differ.*embedded:another-ehr"):
        merge_runs([shards[0], copy], tmp_path / "out")


def test_shards_of_different_counts_are_refused(shards, tmp_path: Path) -> None:
    third = run_shard(tmp_path, 3, count=3)
    with pytest.raises(MergeRefused, match=r"split the run differently \(1/2, 2/2, 3/3\)"):
        merge_runs([*shards, third], tmp_path / "out")


def test_a_shard_with_an_attempt_it_does_not_own_is_refused(shards, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("run.json", "runs.jsonl", "transcripts.jsonl"):
        (copy / name).write_bytes((shards[1] / name).read_bytes())
    stray = read_jsonl(shards[0] / "runs.jsonl")[0]
    with (copy / "runs.jsonl").open("a") as handle:
        handle.write(json.dumps(stray) + "\n")
    with pytest.raises(
        MergeRefused, match=r"1 attempt\(s\) are recorded in both \S+ and \S+copy \(task1_1 attempt 1\)"
    ):
        merge_runs([shards[0], copy], tmp_path / "out")
    without = tmp_path / "without"  # shard 1 without that attempt: no overlap, but shard 2 holds what it does not own
    without.mkdir()
    for name in ("run.json", "transcripts.jsonl"):
        (without / name).write_bytes((shards[0] / name).read_bytes())
    kept = [line for line in read_jsonl(shards[0] / "runs.jsonl") if line != stray]
    (without / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in kept))
    with pytest.raises(
        MergeRefused, match=r"copy holds 1 attempt\(s\) outside the run's selection of shard 2/2 \(task1_1 attempt 1\)"
    ):
        merge_runs([without, copy], tmp_path / "out2")


def test_whole_runs_merge_too_and_one_missing_attempt_is_named(tmp_path: Path) -> None:
    whole = run_shard(tmp_path, None)
    lines = read_jsonl(whole / "runs.jsonl")
    (whole / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[:-1]))
    with pytest.raises(MergeRefused, match=r"the run lacks 1 of its 12 attempt\(s\) \(task10_1 attempt \d\).*--resume"):
        merge_runs([whole], tmp_path / "out")


def test_the_output_must_be_a_new_folder_and_inputs_must_be_runs(shards, tmp_path: Path) -> None:
    with pytest.raises(MergeRefused, match="is one of the folders to merge"):
        merge_runs(list(shards), shards[0])
    with pytest.raises(MergeRefused, match="named twice"):
        merge_runs([shards[0], shards[0]], tmp_path / "out")
    merge_runs(list(shards), tmp_path / "out")
    with pytest.raises(MergeRefused, match="already holds a run"):
        merge_runs(list(shards), tmp_path / "out")
    (tmp_path / "plain").mkdir()
    with pytest.raises(MergeRefused, match="has no run.json: not a medbench run folder"):
        merge_runs([tmp_path / "plain"], tmp_path / "out3")


def test_a_shard_still_being_written_is_refused(shards, tmp_path: Path) -> None:
    lock = SessionLock(shards[1])
    with RunFolder(shards[1]).lock():
        lock.acquire("a-running-session")
    try:
        with pytest.raises(MergeRefused, match="being written by a running session"):
            merge_runs(list(shards), tmp_path / "out")
    finally:
        lock.release()


def test_the_command_line_exits_2_with_the_reason_and_writes_nothing(shards, tmp_path: Path, capsys) -> None:
    assert results_main(["merge", str(shards[0]), "--out", str(tmp_path / "out")]) == 2
    assert "merge refused: shard(s) 2/2 missing (have 1/2)" in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs.jsonl").exists()
    assert results_main(["merge", *map(str, shards), "--out", str(tmp_path / "out")]) == 0
    assert "12 attempts, accuracy 100.0%" in capsys.readouterr().out


def test_gates_fail_on_a_threshold_and_pass_otherwise(shards, tmp_path: Path, capsys) -> None:
    merge_runs(list(shards), tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    summary["correct"] = 6
    summary["accuracy"] = 50.0
    (tmp_path / "out" / "summary.json").write_text(json.dumps(summary))
    assert results_main(["gates", str(tmp_path / "out"), "--min-accuracy=0.9"]) == 1
    assert "GATE FAILED: overall accuracy >= 90.0%: got 50.0% (6/12)" in capsys.readouterr().out
    assert results_main(["gates", str(tmp_path / "out"), "--min-accuracy=50%"]) == 0
