"""Tools mode through the pytest plugin: record a run into cassettes, replay it to identical verdicts,
and find `protocol: tools` in every result file. Real pytest sessions in a scratch project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_replay_e2e import TASKS, make_project, run_bench

TOOLS = ("--model=reference", "--protocol=tools", "--run-name=tools")
RUN_FOLDER = Path("results") / "reference" / "tools"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def verdicts(project: Path) -> dict[str, tuple[str, bool]]:
    return {r["task_id"]: (r["status"], r["correct"]) for r in lines(project / RUN_FOLDER / "runs.jsonl")}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("tools-recorded"))
    result = run_bench(project, *TOOLS, "--record-mode=once")
    assert result.returncode == 0, result.stdout[-3000:]
    return project


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    copy = make_project(tmp_path / "project")
    shutil.copytree(recorded / "cassettes", copy / "cassettes")
    return copy


def test_every_result_file_of_a_tools_run_says_protocol_tools(recorded: Path) -> None:
    folder = recorded / "results" / "reference" / "tools"
    assert json.loads((folder / "summary.json").read_text())["modes"]["protocol"] == "tools"
    assert json.loads((folder / "run.json").read_text())["identity"]["protocol"] == "tools"
    assert {line["modes"]["protocol"] for line in lines(folder / "runs.jsonl")} == {"tools"}
    transcripts = lines(folder / "transcripts.jsonl")
    assert {line["protocol"] for line in transcripts} == {"tools"}
    assert all(line["messages"][1]["tool_calls"] for line in transcripts)
    assert all(line["tool_errors"] == 0 and line["reminders"] == 0 for line in lines(folder / "runs.jsonl"))


def test_a_tools_recording_holds_requests_with_tools_and_tool_messages(recorded: Path) -> None:
    folder = recorded / "cassettes" / "reference" / "tools"
    assert json.loads((folder / "manifest.json").read_text())["identity"]["protocol"] == "tools"
    cassette = json.loads((folder / "task4_1.json").read_text())
    model_requests = [
        i["request"]["body"]["json"]
        for i in cassette["interactions"]
        if i["request"]["uri"].endswith("/chat/completions")
    ]
    assert [len(body["tools"]) for body in model_requests] == [12, 12]
    assert model_requests[1]["messages"][2]["role"] == "tool"


def test_a_tools_recording_replays_offline_to_identical_verdicts(recorded: Path, project: Path) -> None:
    result = run_bench(project, *TOOLS)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "medbench cassettes: replaying" in result.stdout
    assert verdicts(project) == verdicts(recorded) == {task: ("completed", True) for task in TASKS}
    fingerprints = {r["environment_fingerprint"] for r in lines(project / RUN_FOLDER / "runs.jsonl")}
    assert fingerprints == {"replay:tools"}, "a replay starts no FHIR server and no model endpoint"


def test_a_tools_recording_is_refused_for_a_text_protocol_session(project: Path) -> None:
    result = run_bench(project, "--model=reference", "--run-name=tools")
    assert result.returncode == 4
    assert "recorded with other settings" in result.stderr and "protocol: 'tools' -> 'text'" in result.stderr


def test_without_run_name_a_tools_session_replays_the_sub_folder_recorded_with_its_settings(project: Path) -> None:
    """The README's `--protocol=tools` command runs as written in a clone whose model folder holds a
    text recording and, below it, the tools recording (cassettes/reference/tools)."""
    root = project / "cassettes" / "reference"
    for cassette in (root / "tools").iterdir():
        shutil.copy(cassette, root / cassette.name)
    manifest = root / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"protocol": "tools"', '"protocol": "text"'))
    result = run_bench(project, "--model=reference", "--protocol=tools")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"medbench cassettes: replaying {root / 'tools'}" in result.stdout
    assert "same as --run-name=tools" in result.stdout
    records = lines(project / "results" / "reference" / "runs.jsonl")
    assert {r["environment_fingerprint"] for r in records} == {"replay:tools"}
    assert {r["task_id"]: (r["status"], r["correct"]) for r in records} == {t: ("completed", True) for t in TASKS}
