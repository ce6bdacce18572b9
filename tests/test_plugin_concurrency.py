"""The plugin with attempts in flight together, one setup per session, and its early stops.

Driven through pytester with the scripted model and stand-in environment of test_plugin.py,
so these tests exercise the wiring (xdist, the attempt pool, setup, stops), not the network.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from test_plugin import FAKES, bench, read_lines, run_bench, run_folder, task_records, write_tasks  # noqa: F401 (bench is a fixture)

pytest_plugins = ["pytester"]

TIMING_FIELDS = {"time", "latency_s", "elapsed_s", "finished_at", "session", "transcript_id"}


def comparable(records: list[dict]) -> list[dict]:
    """runs.jsonl lines without the fields a concurrent run may change (timing, session)."""
    return sorted(({k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records), key=lambda r: r["task_id"])


@pytest.fixture
def eight(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_tasks(bench, task_records(8))
    monkeypatch.setenv("FAKE_WRONG", "task1_2,task1_7")
    return bench


def test_concurrency_gives_the_result_files_of_a_serial_run(eight: pytest.Pytester) -> None:
    serial = run_bench(eight, "--run-name=serial")
    serial.assert_outcomes(passed=6, failed=2)
    concurrent = run_bench(eight, "--run-name=concurrent", "--concurrency=4")
    concurrent.assert_outcomes(passed=6, failed=2)
    runs = {name: read_lines(run_folder(eight) / name / "runs.jsonl") for name in ("serial", "concurrent")}
    assert comparable(runs["serial"]) == comparable(runs["concurrent"])
    summaries = {name: json.loads((run_folder(eight) / name / "summary.json").read_text()) for name in runs}
    assert summaries["serial"]["task_breakdown"] == summaries["concurrent"]["task_breakdown"]


def test_concurrency_under_xdist_reports_every_attempt_once(eight: pytest.Pytester) -> None:
    result = run_bench(eight, "-n", "2", "--concurrency=3", subprocess=True)
    result.assert_outcomes(passed=6, failed=2)
    runs = read_lines(run_folder(eight) / "runs.jsonl")
    assert sorted(r["task_id"] for r in runs) == sorted(f"task1_{n}" for n in range(1, 9))
    assert len({r["session"] for r in runs}) == 1


TOGETHER = '''

import threading

class TogetherModel(ScriptedModel):
    """Answers only once FAKE_TOGETHER attempts of this process wait at once: a serial run times out."""

    barrier = threading.Barrier(int(os.environ["FAKE_TOGETHER"]), timeout=60)

    def complete(self, messages):
        self.barrier.wait()
        return super().complete(messages)


@pytest.fixture(scope="session")
def medbench_model():
    return TogetherModel()
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_attempts_really_are_in_flight_together(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    write_tasks(bench, task_records(8))
    in_flight = 4 if not workers else 2  # 8 tasks: 4 per xdist worker, interleaved
    monkeypatch.setenv("FAKE_TOGETHER", str(in_flight))
    bench.makeconftest(FAKES.split('@pytest.fixture(scope="session")\ndef medbench_model')[0] + TOGETHER)
    result = run_bench(bench, *workers, f"--concurrency={in_flight}", subprocess=bool(workers))
    result.assert_outcomes(passed=8)


def test_selection_and_resume_behave_as_in_a_serial_run(eight: pytest.Pytester) -> None:
    first = run_bench(eight, "--concurrency=4", "-k", "task1_1 or task1_3")
    first.assert_outcomes(passed=2)
    second = run_bench(eight, "--concurrency=4", "--resume")
    second.assert_outcomes(passed=4, failed=2, skipped=2)
    runs = read_lines(run_folder(eight) / "runs.jsonl")
    assert sorted(r["task_id"] for r in runs) == sorted(f"task1_{n}" for n in range(1, 9))


def test_a_setup_failure_stops_the_session_once_and_leaves_the_previous_run_alone(bench: pytest.Pytester) -> None:
    assert run_bench(bench).ret == 0
    before = sorted(p.name for p in run_folder(bench).iterdir())
    bench.makeconftest(
        FAKES.split('@pytest.fixture(scope="session")\ndef medbench_environment')[0]
        + "@pytest.fixture(scope='session')\ndef medbench_model():\n    return ScriptedModel()\n"
    )
    result = run_bench(bench, "--fhir-url=http://127.0.0.1:9/fhir", "-n", "2", "--concurrency=2", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert len(re.findall(r"FHIR server at http://127.0.0.1:9/fhir/ is not reachable", output)) == 1
    assert sorted(p.name for p in run_folder(bench).iterdir()) == before
    assert not (run_folder(bench) / "archive").exists()


REFUSING = """

class RefusingModel:
    def complete(self, messages):
        with open(os.environ["FAKE_LOG"], "a") as log:
            log.write("call\\n")
        raise ModelCallError("model call failed: HTTP 401: Incorrect API key provided")


@pytest.fixture(scope="session")
def medbench_model():
    return RefusingModel()
"""


def test_a_refusing_endpoint_stops_the_session_after_three_attempts(bench: pytest.Pytester) -> None:
    write_tasks(bench, task_records(10))
    bench.makeconftest(FAKES.split('@pytest.fixture(scope="session")\ndef medbench_model')[0] + REFUSING)
    result = run_bench(bench)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str()
    assert output.count("the model endpoint refused the first 3 attempts with the same error") == 1
    assert len(read_lines(run_folder(bench) / "runs.jsonl")) == 3


def test_the_builtin_models_serve_any_model_name_standalone(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "medbench.models", "serve", "--port", "0", "--model", "do-nothing"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = re.search(r"at (http://\S+/v1)", server.stdout.readline()).group(1)  # type: ignore[union-attr]
        client = openai.OpenAI(base_url=url, api_key="any", max_retries=0)
        answer = client.chat.completions.create(model="my-proxy/alias", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "FINISH([])"
    finally:
        server.terminate()
        server.wait(10)
