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
