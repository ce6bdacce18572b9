"""`python -m medbench.fhir serve` runs the server as a standalone process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from helpers.fhir_sample import sample_resources
from helpers.official import OFFICIAL_V2_DIR, require_official
from medbench.fhir import build_database


def test_serve_command_answers_searches_until_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "sample.sqlite"
    build_database(db, sample_resources())
    process = subprocess.Popen(
        [sys.executable, "-m", "medbench.fhir", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        announced = next(line for line in process.stderr if "FHIR server at " in line)
        base = announced.split("FHIR server at ", 1)[1].split()[0]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/fhir/")
        body = requests.get(base + "Patient?identifier=S0000001&_format=json", timeout=10).json()
        assert body["total"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_or_killed_server_leaves_no_writes_file_behind(tmp_path: Path, stop: signal.Signals) -> None:
    """SIGTERM stops the server cleanly (exit 0); even SIGKILL leaves nothing in the temp
    folder, because the writes layer is in memory."""
    db = tmp_path / "sample.sqlite"
    build_database(db, sample_resources())
    temp = tmp_path / "temp"
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "medbench.fhir", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        assert process.stderr is not None
        announced = next(line for line in process.stderr if "FHIR server at " in line)
        base = announced.split("FHIR server at ", 1)[1].split()[0]
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "BP"},
            "subject": {"reference": "Patient/S0000001"},
        }
        assert requests.post(base + "Observation", json=observation, timeout=10).status_code == 201
    finally:
        process.send_signal(stop)
        status = process.wait(timeout=10)
    assert status == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    assert list(temp.iterdir()) == []


def test_serve_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "medbench.fhir", "serve", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--port", "--scale", "--seed", "--cache-dir", "--db", "--host"):
        assert option in result.stdout


def test_serve_command_serves_the_v2_ehr_seated_for_the_official_v2_tasks(tmp_path: Path) -> None:
    shared = OFFICIAL_V2_DIR
    require_official(shared / "new_patient_tasks.json")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medbench.fhir",
            "serve",
            "--ehr",
            "v2",
            "--official-dir",
            str(shared),
            "--cache-dir",
            str(tmp_path),
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        announced = next(line for line in process.stderr if "FHIR server at " in line)
        base = announced.split("FHIR server at ", 1)[1].split()[0]
        body = requests.get(base + "Patient?identifier=S6315806&_format=json", timeout=10).json()
        assert body["total"] == 1  # the patient of official v2 task1_1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
