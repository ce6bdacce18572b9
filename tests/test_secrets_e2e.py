"""No secret reaches any file: a real pytest session against an endpoint that echoes the credentials.

The endpoint answers every call with `401 Incorrect API key provided: <the Authorization header>`
(as OpenAI does), the session records cassettes and writes a JSON report and a JUnit XML file,
and then every file written, and the terminal, are searched for every secret.
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

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-echoed-Zq81secretkey"
HEADER_TOKEN = "hdr-token-Xy42-secret"
TENANT = "tenant-secret-9931"


class EchoingEndpoint:
    """Refuses every request, echoing the Authorization header it got in the error body."""

    seen: ClassVar[list[str | None]] = []

    @classmethod
    def refuse(cls, request: Request) -> Response:
        authorization = request.headers.get("Authorization")
        cls.seen.append(authorization)
        message = f"Incorrect API key provided: {authorization}. Tenant {request.headers.get('X-Tenant')}"
        return json_response({"error": {"message": message, "code": "invalid_api_key"}}, 401)


@pytest.fixture
def endpoint() -> Iterator[str]:
    EchoingEndpoint.seen.clear()
    with serving(EchoingEndpoint.refuse) as server:
        yield base_url(server, "v1")


def run_session(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    project.mkdir(parents=True)
    (project / "conftest.py").write_text('pytest_plugins = ["medbench.plugin"]\n')
    (project / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(ROOT / "tests_bench" / "test_medagentbench.py", project / "test_medagentbench.py")
    selection = [f"test_medagentbench.py::test_task[{task}]" for task in ("task1_1", "task3_1")]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--ehr-scale=small",
            "--results-dir=results",
            "-p",
            "no:cacheprovider",
            "--model=acme/echo",
            "--record-mode=once",
            "--json-report",
            "--json-report-file=report.json",
            "--junitxml=junit.xml",
            *args,
            *selection,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_nothing_leaked(project: Path, result: subprocess.CompletedProcess[str], secrets: tuple[str, ...]) -> None:
    written = [path for path in project.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    names = {path.name for path in written}
    assert {
        "runs.jsonl",
        "transcripts.jsonl",
        "summary.json",
        "report.json",
        "junit.xml",
        "task1_1.json",
        "task3_1.json",
    } <= names, names
    for path in written:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in secrets:
            assert secret not in text, f"{secret!r} written to {path}"
    for secret in secrets:
        assert secret not in result.stdout + result.stderr


def test_an_echoed_api_key_reaches_no_file_results_cassettes_or_reports(tmp_path: Path, endpoint: str) -> None:
    project = tmp_path / "key"
    result = run_session(project, f"--base-url={endpoint}", f"--api-key={KEY}")
    assert f"Bearer {KEY}" in EchoingEndpoint.seen  # the endpoint did get (and echo) the key
    runs = [json.loads(line) for line in (project / "results" / "acme_echo" / "runs.jsonl").read_text().splitlines()]
    assert {run["status"] for run in runs} == {"error"}
    assert all("Incorrect API key provided: ***" in run["error"] for run in runs)
    cassette = (project / "cassettes" / "acme_echo" / "task1_1.json").read_text()
    assert "Incorrect API key provided: ***" in cassette
    assert_nothing_leaked(project, result, (KEY,))


def test_an_authorization_extra_header_wins_and_no_header_value_reaches_any_file(tmp_path: Path, endpoint: str) -> None:
    project = tmp_path / "header"
    result = run_session(
        project,
        f"--base-url={endpoint}",
        f"--api-key={KEY}",
        f"--extra-header=Authorization=Bearer {HEADER_TOKEN}",
        f"--extra-header=X-Tenant={TENANT}",
    )
    chat_calls = [seen for seen in EchoingEndpoint.seen if seen is not None]
    assert chat_calls and set(chat_calls) == {f"Bearer {HEADER_TOKEN}"}  # the key itself was never sent
    assert_nothing_leaked(project, result, (KEY, HEADER_TOKEN, TENANT))
