"""Beyond one machine, end to end: three shards as three processes merged into the run one process
writes, refusals of a missing and a twice-run shard, --resume on a shard, and one run spread over
two built-in model servers (one of them stopped mid-run by its own answer count).

Real parts throughout: pytest processes with the medbench plugin, the embedded FHIR server, the
reference model over HTTP (its own endpoint, or `python -m medbench.models serve` replicas).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from helpers.model_servers import ServedModel, served_models
from medbench.reports import write_reports
from medbench.results.writer import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
# Fields of summary.json that measure time or name sessions: the only ones a merge may change.
TIMINGS = {"elapsed_seconds", "setup_seconds", "latency_s", "created", "sessions"}
SECRET = "sk-replica-e2e-secret-9876543210"


def bench_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "conftest.py").write_text('pytest_plugins = ["medbench.plugin"]\n')
    (path / "test_medagentbench.py").write_text((ROOT / "tests_bench" / "test_medagentbench.py").read_text())
    return path


def pytest_command(*options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--ehr-scale=small",
        "--concurrency=8",
        *options,
    ]


def run(cwd: Path, command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def merge(cwd: Path, *folders: str, out: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, [sys.executable, "-m", "medbench.results", "merge", *folders, "--out", out])


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def verdicts(folder: Path) -> dict:
    latest = {(r["task_id"], r["attempt"]): r for r in read_jsonl(folder / "runs.jsonl")}
    return {key: (r["status"], r["correct"], r["reason"], r["result"], r["num_turns"]) for key, r in latest.items()}


def without_timings(data: dict) -> dict:
    kept = {key: value for key, value in data.items() if key not in TIMINGS}
    kept["model_calls"] = {k: v for k, v in kept["model_calls"].items() if k != "time_lost_s"}
    return kept


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three shards started together as three processes, and the same run in one process: once per
    test session, shared by xdist workers through a folder beside theirs (the xdist docs' recipe)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' folders share this session's parent
        base = base.parent
    path = base / "medbench-sharded"
    with FileLock(str(path) + ".lock"):
        if not (path / "single" / "reference" / "summary.json").exists():
            shutil.rmtree(path, ignore_errors=True)
            run_shards_and_single(bench_dir(path))
    return path


def run_shards_and_single(path: Path) -> None:
    shards = [
        subprocess.Popen(
            pytest_command("--model=reference", f"--shard={i}/3", f"--results-dir=shards/{i}"),
            cwd=path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2, 3)
    ]
    outputs = [process.communicate(timeout=600)[0] for process in shards]
    assert [process.returncode for process in shards] == [0, 0, 0], outputs
    single = run(path, pytest_command("--model=reference", "--results-dir=single"))
    assert single.returncode == 0, single.stdout[-3000:]


def test_three_shards_merge_into_what_one_process_writes(sharded: Path) -> None:
    parts = [summary(sharded / "shards" / str(i) / "reference") for i in (1, 2, 3)]
    assert [p["shard"]["index"] for p in parts] == [1, 2, 3] and {p["shard"]["count"] for p in parts} == {3}
    assert sum(p["total"] for p in parts) == 300 and all(p["complete"] for p in parts)
    assert len({p["shard"]["selection"]["sha256"] for p in parts}) == 1
    assert {p["shard"]["selection"]["attempts"] for p in parts} == {300}
    result = merge(sharded, "shards/1/reference", "shards/2/reference", "shards/3/reference", out="merged/reference")
    assert result.returncode == 0, result.stderr
    assert "merged 3 folder(s) (shards 1/3, 2/3, 3/3)" in result.stdout
    merged, single = sharded / "merged" / "reference", sharded / "single" / "reference"
    assert without_timings(summary(merged)) == without_timings(summary(single))
    assert summary(merged)["total"] == 300 and "shard" not in summary(merged)
    assert verdicts(merged) == verdicts(single) and len(verdicts(merged)) == 300
    runs = read_jsonl(merged / "runs.jsonl")
    transcripts = read_jsonl(merged / "transcripts.jsonl")
    assert [r["transcript_id"] for r in runs] == [t["transcript_id"] for t in transcripts]
    assert [r["index"] for r in runs] == sorted(r["index"] for r in runs)  # the run's order
    assert len(summary(merged)["sessions"]) == 3


def test_the_merged_run_passes_the_ci_gates_and_renders_in_the_reports_and_viewer(sharded: Path) -> None:
    merged = sharded / "gated" / "reference"
    assert merge(sharded, *(f"shards/{i}/reference" for i in (1, 2, 3)), out="gated/reference").returncode == 0
    gates = run(
        sharded,
        [
            sys.executable,
            "-m",
            "medbench.results",
            "gates",
            str(merged),
            "--min-accuracy=0.95",
            "--min-task-accuracy=task5=0.9",
        ],
    )
    assert gates.returncode == 0, gates.stdout + gates.stderr
    assert "gates passed" in gates.stdout
    on_a_shard = run(
        sharded, [sys.executable, "-m", "medbench.results", "gates", "shards/1/reference", "--min-accuracy=0.5"]
    )
    assert on_a_shard.returncode == 2 and "merge the shards" in on_a_shard.stderr
    paths = write_reports(sharded / "gated", sharded / "report")
    names = {path.name for path in paths}
    assert {"report.html", "report.md", "transcripts.html"} <= names
    assert "300" in (sharded / "report" / "report.md").read_text()
    index = next((sharded / "report" / "transcripts").glob("m*/index.js")).read_text()
    assert index.count('"t":') == 300


def test_a_missing_shard_is_refused_naming_it(sharded: Path) -> None:
    result = merge(sharded, "shards/1/reference", "shards/3/reference", out="missing/reference")
    assert result.returncode == 2
    assert "shard(s) 2/3 missing (have 1/3, 3/3)" in result.stderr and "--shard 2/3" in result.stderr
    assert not (sharded / "missing" / "reference" / "runs.jsonl").exists()


def test_a_shard_run_twice_is_refused_naming_both_folders(sharded: Path) -> None:
    # Part of shard 2 again is enough: recorded twice is refused before anything is counted as missing.
    again = run(sharded, pytest_command("--model=reference", "--shard=2/3", "--results-dir=again", "-k", "task3"))
    assert again.returncode == 0, again.stdout[-2000:]
    result = merge(sharded, *(f"shards/{i}/reference" for i in (1, 2, 3)), "again/reference", out="twice/reference")
    assert result.returncode == 2
    assert re.search(r"shard 2/3 was run twice \(\S*shards/2/reference and \S*again/reference\)", result.stderr)
    assert not (sharded / "twice" / "reference").exists() or not any((sharded / "twice" / "reference").glob("*.jsonl"))


def test_folders_of_other_settings_are_refused_naming_the_difference(sharded: Path) -> None:
    other = run(
        sharded,
        pytest_command("--model=reference", "--shard=2/3", "--max-rounds=5", "--results-dir=other", "-k", "task3"),
    )
    assert other.returncode == 0, other.stdout[-2000:]
    result = merge(sharded, "shards/1/reference", "other/reference", "shards/3/reference", out="mixed/reference")
    assert result.returncode == 2
    assert "not part of the same run" in result.stderr and "max_rounds: 8 -> 5" in result.stderr


def test_resume_finishes_a_shard_and_the_merge_then_accepts_it(sharded: Path) -> None:
    first = run(sharded, pytest_command("--model=reference", "--shard=1/3", "--results-dir=resumed", "-k", "task3"))
    assert first.returncode == 0, first.stdout[-2000:]
    refused = merge(sharded, "resumed/reference", "shards/2/reference", "shards/3/reference", out="early/reference")
    assert refused.returncode == 2
    assert re.search(r"shard 1/3 \(\S+\) lacks \d+ of its 100 attempt\(s\).*--resume --shard 1/3", refused.stderr)
    rest = run(sharded, pytest_command("--model=reference", "--shard=1/3", "--results-dir=resumed", "--resume"))
    assert rest.returncode == 0, rest.stdout[-2000:]
    assert "skipped" in rest.stdout
    done = merge(sharded, "resumed/reference", "shards/2/reference", "shards/3/reference", out="late/reference")
    assert done.returncode == 0, done.stderr
    assert verdicts(sharded / "late" / "reference") == verdicts(sharded / "single" / "reference")


@pytest.fixture
def replicas(request: pytest.FixtureRequest) -> Iterator[list[ServedModel]]:
    """Two `python -m medbench.models serve` processes; the second's options come from the test's parameter."""
    with served_models([], getattr(request, "param", [])) as started:
        yield started


def replica_run(path: Path, urls: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REPLICA_KEY": SECRET}
    options = [f"--base-url={url}" for url in urls]
    return run(
        path,
        pytest_command("--model=reference-served", "--api-key-env=REPLICA_KEY", *options, "--results-dir=results"),
        env=env,
    )


def test_two_replicas_share_one_run(tmp_path: Path, replicas) -> None:
    path = bench_dir(tmp_path / "bench")
    urls = [served.base_url for served in replicas]
    result = replica_run(path, urls)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "300 passed" in result.stdout
    data = summary(path / "results" / "reference-served")
    assert data["total"] == 300 and data["correct"] == 300
    assert [r["base_url"] for r in data["replicas"]] == urls
    calls = data["model_calls"]["calls"]
    assert sum(r["calls"] for r in data["replicas"]) == calls
    for replica in data["replicas"]:
        assert 0.35 <= replica["calls"] / calls <= 0.65, data["replicas"]
    assert data["endpoint"]["replicas"] == urls
    for file in (path / "results").rglob("*"):
        if file.is_file():
            assert SECRET not in file.read_text(errors="replace"), file


@pytest.mark.parametrize("replicas", [["--stop-after=100"]], indirect=True)
def test_a_replica_stopped_mid_run_loses_nothing(tmp_path: Path, replicas) -> None:
    path = bench_dir(tmp_path / "bench")
    urls = [served.base_url for served in replicas]
    result = replica_run(path, urls)
    assert result.returncode == 0, result.stdout[-3000:]
    stopped = replicas[1]
    assert stopped.process.wait(timeout=30) == 0  # it went away by itself, after its 100th answer
    answered = stopped.answered()
    data = summary(path / "results" / "reference-served")
    assert data["total"] == 300 and data["correct"] == 300 and data["infrastructure_failures"] == 0
    assert len(verdicts(path / "results" / "reference-served")) == 300
    first, second = data["replicas"]
    assert 100 <= answered and second["calls"] <= answered and second["failures"] >= 1
    assert first["calls"] + second["calls"] == data["model_calls"]["calls"]
    assert first["calls"] > second["calls"]
