"""Record a benchmark run into cassettes, then replay it offline: real pytest sessions in a scratch project.

A few generated tasks on the small EHR with the reference model; one recording per module is
copied into each test's own project, so the tests stay independent and quick.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from werkzeug import Request, Response

from helpers.fake_http import base_url, json_response, serving
from helpers.official import require_official

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("task1_1", "task4_1", "task9_1")
SMALL = ("--ehr-scale=small", "--results-dir=results", "-p", "no:cacheprovider")


def make_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conftest.py").write_text('pytest_plugins = ["medbench.plugin"]\n')
    (folder / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(ROOT / "tests_bench" / "test_medagentbench.py", folder / "test_medagentbench.py")
    return folder


def run_bench(project: Path, *args: str, tasks: tuple[str, ...] = TASKS) -> subprocess.CompletedProcess[str]:
    selection = [f"test_medagentbench.py::test_task[{task}]" for task in tasks]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *SMALL, *args, *selection],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def outcomes(project: Path, model: str = "reference") -> dict[str, tuple[str, bool, str]]:
    lines = (project / "results" / model / "runs.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {r["task_id"]: (r["status"], r["correct"], r["environment_fingerprint"]) for r in records}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose cassettes/reference/ holds a recording of TASKS (made once per module)."""
    project = make_project(tmp_path_factory.mktemp("recorded"))
    result = run_bench(project, "--model=reference", "--record-mode=once")
    assert result.returncode == 0, result.stdout[-3000:]
    return project


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded project (cassettes only, no results)."""
    copy = make_project(tmp_path / "project")
    shutil.copytree(recorded / "cassettes", copy / "cassettes")
    return copy


def test_recording_writes_one_reviewable_cassette_per_task_and_a_manifest(recorded: Path) -> None:
    folder = recorded / "cassettes" / "reference"
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{t}.json" for t in TASKS] + ["manifest.json"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["identity"]["task_set"].startswith("generated")
    assert manifest["identity"]["environment"] == {"kind": "embedded", "ehr_seed": 0, "ehr_scale": "small"}
    cassette = json.loads((folder / "task4_1.json").read_text())
    paths = [i["request"]["uri"].split("/", 3)[3] for i in cassette["interactions"]]
    assert any(p.startswith("v1/chat/completions") for p in paths), "the model endpoint is recorded"
    assert any(p.startswith("fhir/Observation?") for p in paths), "the FHIR server is recorded"
    assert (folder / "task4_1.json").read_text().count("\n") > 100, "bodies are stored one line per line"


def test_a_recording_replays_offline_with_the_same_statuses_and_verdicts(recorded: Path, project: Path) -> None:
    result = run_bench(project, "--model=reference")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "medbench cassettes: replaying" in result.stdout
    live, replayed = outcomes(recorded), outcomes(project)
    assert {k: v[:2] for k, v in replayed.items()} == {k: v[:2] for k, v in live.items()}
    assert all(v[2].startswith("embedded:") for v in live.values())
    assert all(v[2] == "replay:reference" for v in replayed.values()), "a replay starts no FHIR server"


def test_a_replay_under_xdist_gives_the_same_verdicts(recorded: Path, project: Path) -> None:
    result = run_bench(project, "--model=reference", "--record-mode=none", "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    assert {k: v[:2] for k, v in outcomes(project).items()} == {k: v[:2] for k, v in outcomes(recorded).items()}


def test_a_changed_prompt_fails_the_task_as_cassette_mismatch_instead_of_calling_out(project: Path) -> None:
    path = project / "cassettes" / "reference" / "task1_1.json"
    cassette = json.loads(path.read_text())
    cassette["interactions"][0]["request"]["body"]["json"]["messages"][0]["content"] += " (edited prompt)"
    path.write_text(json.dumps(cassette))
    result = run_bench(project, "--model=reference", tasks=("task1_1",))
    assert result.returncode == 1
    status, correct, _ = outcomes(project)["task1_1"]
    assert (status, correct) == ("cassette_mismatch", False)


def test_a_request_the_replay_never_makes_is_reported_as_divergence(project: Path) -> None:
    path = project / "cassettes" / "reference" / "task4_1.json"
    cassette = json.loads(path.read_text())
    extra = json.loads(json.dumps(cassette["interactions"][1]))
    extra["request"]["uri"] += "&date=gt2023-01-01"
    cassette["interactions"].append(extra)
    path.write_text(json.dumps(cassette))
    result = run_bench(project, "--model=reference", tasks=("task4_1",))
    assert result.returncode == 1
    assert "replay diverged" in result.stdout and "1 of" in result.stdout


def test_cassettes_of_another_task_set_are_refused_before_any_task_runs(project: Path) -> None:
    official = require_official()
    result = run_bench(
        project, "--model=reference", "--record-mode=none", "--tasks=official", f"--official-dir={official}"
    )
    assert result.returncode == 4
    assert "recorded with other settings" in result.stderr and "task_set_sha256" in result.stderr
    assert "--disable-recording" in result.stderr
    assert not (project / "results").exists()


def test_a_built_in_model_runs_live_when_the_cassettes_were_recorded_with_other_settings(project: Path) -> None:
    """The README's commands run as written in a clone that ships recordings: without --record-mode or
    --run-name, a built-in model (free to run) runs live and says why; nothing is re-recorded."""
    before = {p.name: p.read_text() for p in (project / "cassettes" / "reference").iterdir()}
    result = run_bench(project, "--model=reference", "--task-seed=7", tasks=("task2_1",))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "medbench cassettes: none (live run)" in result.stdout
    assert "running live: the cassettes in" in result.stdout and "task_set_sha256" in result.stdout
    assert outcomes(project)["task2_1"][2].startswith("embedded:")
    assert {p.name: p.read_text() for p in (project / "cassettes" / "reference").iterdir()} == before


def test_a_real_model_is_refused_when_the_cassettes_were_recorded_with_other_settings(project: Path) -> None:
    """A recording never turns into a paid live run by accident."""
    shutil.copytree(project / "cassettes" / "reference", project / "cassettes" / "some-model")
    manifest = project / "cassettes" / "some-model" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"model": "reference"', '"model": "some-model"'))
    (project / "cassettes" / "some-model" / "tools").mkdir()
    shutil.copy(project / "cassettes" / "some-model" / "task1_1.json", project / "cassettes" / "some-model" / "tools")
    result = run_bench(project, "--model=some-model", "--base-url=http://127.0.0.1:9/v1", "--task-seed=7")
    assert result.returncode == 4
    assert "recorded with other settings" in result.stderr and "task_set_sha256" in result.stderr
    assert "Other recorded sets here: --run-name=tools." in result.stderr, "the way to the other recording is named"


def test_under_xdist_refused_cassettes_fail_every_task_with_the_reason(project: Path) -> None:
    result = run_bench(project, "--model=reference", "--record-mode=none", "--task-seed=7", "-n", "2")
    assert result.returncode == 1
    assert result.stdout.count("recorded with other settings") >= len(TASKS)
    assert "INTERNALERROR" not in result.stdout + result.stderr


def test_disable_recording_runs_live_and_leaves_the_cassettes_alone(project: Path) -> None:
    before = {p.name: p.read_text() for p in (project / "cassettes" / "reference").iterdir()}
    result = run_bench(project, "--model=reference", "--task-seed=7", "--disable-recording", tasks=("task2_1",))
    assert result.returncode == 0, result.stdout[-3000:]
    assert outcomes(project)["task2_1"][2].startswith("embedded:")
    assert {p.name: p.read_text() for p in (project / "cassettes" / "reference").iterdir()} == before


def test_without_cassettes_or_record_mode_the_run_is_live_and_records_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "fresh")
    result = run_bench(project, "--model=reference", tasks=("task2_1",))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "medbench cassettes: none (live run)" in result.stdout
    assert not (project / "cassettes").exists()


def test_replay_mode_without_a_cassette_names_the_command_that_records_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "fresh")
    result = run_bench(project, "--model=reference", "--record-mode=none", tasks=("task2_1",))
    assert result.returncode == 1
    assert "no cassette" in result.stdout and "--record-mode=once" in result.stdout


class _HeaderLoggingModel:
    """The reference model behind a "remote" endpoint that remembers the headers it was sent."""

    seen: ClassVar[list[dict[str, str]]] = []

    @classmethod
    def answer(cls, request: Request) -> Response:
        from medbench.models.builtin.server import chat_completion

        if request.method != "POST":
            return Response(b"", status=501)
        cls.seen.append({name.lower(): value for name, value in request.headers.items()})
        body = json.loads(request.get_data())
        return json_response(
            chat_completion({**body, "model": "reference"}), headers={"Set-Cookie": "session=cookie-secret-42"}
        )


@pytest.fixture
def remote_model() -> Iterator[str]:
    with serving(_HeaderLoggingModel.answer) as server:
        yield base_url(server, "v1")


def test_api_key_extra_headers_and_cookies_never_reach_cassettes_or_results(tmp_path: Path, remote_model: str) -> None:
    key, header_value = "sk-test-Zq81secretkey", "x-secret-value-77"
    project = make_project(tmp_path / "secrets")
    result = run_bench(
        project,
        "--model=remote-ref",
        f"--base-url={remote_model}",
        f"--api-key={key}",
        f"--extra-header=X-Secret={header_value}",
        "--record-mode=once",
        tasks=("task1_1", "task4_1"),
    )
    assert result.returncode == 0, result.stdout[-3000:]
    sent = _HeaderLoggingModel.seen
    calls = len(sent)
    assert any(h.get("authorization") == f"Bearer {key}" and h.get("x-secret") == header_value for h in sent)
    written = [p for folder in ("cassettes", "results") for p in (project / folder).rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" and p.parent.name == "remote-ref" and p.name.startswith("task") for p in written)
    for path in written:
        text = path.read_text()
        for secret in (key, header_value, "cookie-secret-42"):
            assert secret not in text, f"{secret} written to {path}"
    replayed = run_bench(project, "--model=remote-ref", f"--base-url={remote_model}", tasks=("task1_1", "task4_1"))
    assert replayed.returncode == 0, replayed.stdout[-3000:]
    assert len(sent) == calls, "a replay never calls the model endpoint"


MANY = ("task1_1", "task2_1", "task3_1", "task4_1", "task5_1", "task6_1", "task7_1", "task8_1", "task9_1", "task10_1")


def test_a_recording_made_with_attempts_in_flight_together_replays_to_the_same_verdicts(tmp_path: Path) -> None:
    project = make_project(tmp_path / "concurrent")
    recording = run_bench(project, "--model=reference", "--record-mode=once", "--concurrency=8", tasks=MANY)
    assert recording.returncode == 0, recording.stdout[-3000:]
    live = outcomes(project)
    assert sorted(path.stem for path in (project / "cassettes" / "reference").glob("task*.json")) == sorted(MANY)
    replayed = run_bench(project, "--model=reference", "-n", "2", "--concurrency=4", tasks=MANY)
    assert replayed.returncode == 0, replayed.stdout[-3000:]
    assert "replaying" in replayed.stdout
    assert {task: status[:2] for task, status in outcomes(project).items()} == {
        task: status[:2] for task, status in live.items()
    }
