"""The shipped recording (cassettes/reference) still replays to the recorded verdicts.

One task per category, so this stays quick; `python scripts/check_replay.py` replays all of them.
When this fails after a prompt, agent, task-set or grader change, re-record the cassettes
(README, "Update cassettes after a prompt or agent change").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "cassettes" / "reference"
SAMPLE = tuple(f"task{category}_1" for category in range(1, 11))


@pytest.mark.skipif(not (SHIPPED / "verdicts.json").exists(), reason="no shipped recording in cassettes/reference")
def test_one_shipped_cassette_per_category_replays_to_the_recorded_status_and_verdict(tmp_path: Path) -> None:
    selection = [f"tests_bench/test_medagentbench.py::test_task[{task}]" for task in SAMPLE]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--model=reference",
            "--record-mode=none",
            f"--results-dir={tmp_path}",
            "-q",
            "-p",
            "no:cacheprovider",
            *selection,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    expected = json.loads((SHIPPED / "verdicts.json").read_text())
    runs = tmp_path / "reference" / "runs.jsonl"
    assert runs.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    replayed = {}
    for line in runs.read_text().splitlines():
        record = json.loads(line)
        replayed[f"{record['task_id']}#{record['attempt']}"] = {
            "status": record["status"],
            "correct": record["correct"],
        }
        assert record["environment_fingerprint"] == "replay:reference", "served from the cassettes, no server"
    assert replayed == {f"{task}#1": expected[f"{task}#1"] for task in SAMPLE}
    assert " error" not in result.stdout.splitlines()[-1], result.stdout[-2000:]


SHIPPED_TOOLS = SHIPPED / "tools"


@pytest.mark.skipif(not (SHIPPED_TOOLS / "verdicts.json").exists(), reason="no shipped tools-mode recording")
def test_one_shipped_tools_mode_cassette_per_category_replays_to_the_recorded_verdict(tmp_path: Path) -> None:
    selection = [f"tests_bench/test_medagentbench.py::test_task[{task}]" for task in SAMPLE]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--model=reference",
            "--protocol=tools",
            "--run-name=tools",
            "--record-mode=none",
            f"--results-dir={tmp_path}",
            "-q",
            "-p",
            "no:cacheprovider",
            *selection,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    expected = json.loads((SHIPPED_TOOLS / "verdicts.json").read_text())
    runs = tmp_path / "reference" / "tools" / "runs.jsonl"
    assert runs.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    assert {f"{r['task_id']}#{r['attempt']}": {"status": r["status"], "correct": r["correct"]} for r in records} == {
        f"{task}#1": expected[f"{task}#1"] for task in SAMPLE
    }
    assert {r["environment_fingerprint"] for r in records} == {"replay:tools"}
    assert {r["modes"]["protocol"] for r in records} == {"tools"}


SHIPPED_V2 = SHIPPED / "v2"
V2_SAMPLE = ["task1_1", "task2_16", "task7_15", "task8_1"]


@pytest.mark.skipif(not (SHIPPED_V2 / "verdicts.json").exists(), reason="no shipped v2 recording")
def test_shipped_v2_cassettes_replay_through_the_v2_protocol_to_the_recorded_verdicts(tmp_path: Path) -> None:
    anchor = json.loads((SHIPPED_V2 / "summary.json").read_text())["modes"]["v2_task1_anchor"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests_bench",
            "--model=reference",
            "--tasks=generated-v2",
            "--ehr-scale=small",
            "--run-name=v2",
            f"--v2-task1-anchor={anchor}",
            f"--task-id={','.join(V2_SAMPLE)}",
            "--record-mode=none",
            f"--results-dir={tmp_path}",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    expected = json.loads((SHIPPED_V2 / "verdicts.json").read_text())
    runs = tmp_path / "reference" / "v2" / "runs.jsonl"
    assert runs.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    assert {f"{r['task_id']}#{r['attempt']}": {"status": r["status"], "correct": r["correct"]} for r in records} == {
        f"{task}#1": expected[f"{task}#1"] for task in V2_SAMPLE
    }
    assert {r["modes"]["protocol"] for r in records} == {"v2-tools"}
    assert {r["modes"]["v2_task1_anchor"] for r in records} == {anchor}
