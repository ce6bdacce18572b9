"""The plugin against bad endpoints and busy folders: no lost attempt, no silent retry, one session per folder.

Flaky-endpoint tests run the real model client (openai SDK, real HTTP) through the fault-injecting
proxy (`medbench.testing.fault_proxy`) in front of a small loopback endpoint that answers the toy
tasks, in pytest subprocesses (in-process pytester runs re-import the HTTP stack, whose exception
classes then no longer match the SDK's); the others reuse test_plugin's scripted model.
Concurrency is synchronised with FIFOs.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator

import pytest
from test_plugin import FAKES, bench, read_lines, run_bench, run_folder  # noqa: F401 (bench: a fixture)
from werkzeug import Request, Response

from helpers.fake_http import base_url, chat_completion, json_response, serving
from medbench.models.client import OpenAIChatModel
from medbench.settings import CallLimits
from medbench.testing.fault_proxy import FaultProxy, scripted_faults

pytest_plugins = ["pytester"]

# The scripted model's conftest without its medbench_model fixture: the plugin's own client is used.
REAL_CLIENT = FAKES.split('@pytest.fixture(scope="session")\ndef medbench_model')[0]


class ToyEndpoint:
    """Answers every toy task with FINISH of the MRN its instruction names; GET /models lists nothing."""

    @staticmethod
    def answer(request: Request) -> Response:
        if request.method == "GET":
            return json_response({"object": "list", "data": []})
        body = json.loads(request.get_data())
        mrn = re.search(r"expected=(\w+)", body["messages"][0]["content"]).group(1)
        usage = {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}
        return json_response(chat_completion(f'FINISH(["{mrn}"])', model=body["model"], usage=usage))


@pytest.fixture(scope="module")
def toy_endpoint() -> Iterator[str]:
    with serving(ToyEndpoint.answer) as server:
        yield base_url(server, "v1")


def proxied(bench: pytest.Pytester, toy_endpoint: str, *faults: str | None) -> FaultProxy:
    bench.makeconftest(REAL_CLIENT)
    return FaultProxy(toy_endpoint, scripted_faults(faults), stall_s=30.0)


# --- options ---------------------------------------------------------------------------------


def test_call_limit_options_fall_back_to_env_and_ini_and_are_recorded(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench.makeini("[pytest]\nmedbench_retry_budget = 30\n")
    monkeypatch.setenv("MEDBENCH_TIMEOUT_RETRIES", "2")
    run_bench(bench, "--timeout=7.5").assert_outcomes(passed=4)
    endpoint = json.loads((run_folder(bench) / "run.json").read_text())["details"]["endpoint"]
    assert (endpoint["timeout_s"], endpoint["retry_budget_s"], endpoint["timeout_retries"]) == (7.5, 30.0, 2)


def test_the_plugin_defaults_are_the_clients() -> None:
    defaults = {name: parameter.default for name, parameter in inspect.signature(OpenAIChatModel).parameters.items()}
    assert all(defaults[name] == value for name, value in CallLimits().client_kwargs().items())


@pytest.mark.parametrize("option", ["--timeout=0", "--retry-budget=-1", "--timeout-retries=-1"])
def test_impossible_call_limits_are_usage_errors(bench: pytest.Pytester, option: str) -> None:
    result = run_bench(bench, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert option.split("=")[0] in result.stderr.str()


def test_model_timeout_stays_usable_when_another_plugin_owns_timeout(bench: pytest.Pytester) -> None:
    bench.makepyfile(
        other_timeout="def pytest_addoption(parser):\n    parser.addoption('--timeout', dest='other_timeout')\n"
    )
    bench.syspathinsert()
    result = run_bench(bench, "-p", "other_timeout", "--timeout=99", "--model-timeout=5")
    result.assert_outcomes(passed=4)
    endpoint = json.loads((run_folder(bench) / "run.json").read_text())["details"]["endpoint"]
    assert endpoint["timeout_s"] == 5.0


# --- a flaky endpoint costs retries, never attempts ------------------------------------------


def test_a_flaky_endpoint_costs_retries_and_every_retry_is_printed(bench: pytest.Pytester, toy_endpoint: str) -> None:
    with proxied(bench, toy_endpoint, "GET drop", "truncate", "503", None, "drop", None, "429") as proxy:
        result = run_bench(bench, "--model=flaky", f"--base-url={proxy.base_url}", subprocess=True)
    result.assert_outcomes(passed=4)
    assert proxy.counts == {"drop": 2, "truncate": 1, "503": 1, "429": 1}
    out = result.stdout.str()
    assert re.search(r"medbench: task1_1: model call attempt 1 failed \(truncated or malformed response body", out)
    assert "medbench: task1_1: model call attempt 2 failed (HTTP 503" in out
    assert "medbench: task1_2: model call attempt 1 failed (APIConnectionError" in out
    assert "medbench: task1_3: model call attempt 1 failed (HTTP 429" in out
    runs = read_lines(run_folder(bench, "flaky") / "runs.jsonl")
    assert {r["task_id"]: r["retries"] for r in runs} == {"task1_1": 2, "task1_2": 1, "task1_3": 1, "task1_4": 0}
    assert all(r["time_lost_s"] > 0 for r in runs if r["retries"])
    summary = json.loads((run_folder(bench, "flaky") / "summary.json").read_text())
    assert summary["model_calls"]["retries"] == 4 and summary["model_calls"]["timeouts"] == 0
    assert "medbench: model calls: 4, 4 retried (0 timeouts" in out


def test_retry_lines_of_xdist_workers_reach_the_terminal(bench: pytest.Pytester, toy_endpoint: str) -> None:
    with proxied(bench, toy_endpoint, "truncate", "503") as proxy:
        result = run_bench(bench, "--model=flaky", f"--base-url={proxy.base_url}", "-n", "2", subprocess=True)
    result.assert_outcomes(passed=4)
    lines = [line for line in result.stdout.lines if re.match(r"medbench: task1_\d: model call attempt 1 failed", line)]
    assert len(lines) == 2, result.stdout.str()


def test_a_stalled_call_is_retried_once_then_the_failure_line_says_why(
    bench: pytest.Pytester, toy_endpoint: str
) -> None:
    with proxied(bench, toy_endpoint, "stall", "stall") as proxy:
        result = run_bench(bench, "--model=flaky", f"--base-url={proxy.base_url}", "--timeout=0.5", subprocess=True)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "medbench: task1_1: model call attempt 1 timed out (APITimeoutError: no answer within 0.5 s); retrying in *",
            "medbench: task1_1: model call attempt 2 timed out (*); giving up after *",
            "*task1_1 incorrect: error: ModelCallError: model call failed after 1 retries (timed out 2 times; "
            "at most 1 timeout retries): APITimeoutError* (status error, 0 turns)*",
        ]
    )
    errored = next(r for r in read_lines(run_folder(bench, "flaky") / "runs.jsonl") if r["task_id"] == "task1_1")
    assert (errored["status"], errored["retries"], errored["timeouts"]) == ("error", 1, 2)
    assert errored["time_lost_s"] == errored["latency_s"] > 0


def test_timeout_retries_option_reaches_the_client(bench: pytest.Pytester, toy_endpoint: str) -> None:
    with proxied(bench, toy_endpoint, "stall") as proxy:
        result = run_bench(
            bench,
            "--model=flaky",
            f"--base-url={proxy.base_url}",
            "--timeout=0.5",
            "--timeout-retries=0",
            subprocess=True,
        )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*task1_1 incorrect: error: *timed out 1 times; at most 0 timeout retries*"])


def test_a_dropped_preflight_is_retried_instead_of_failing_every_test(
    bench: pytest.Pytester, toy_endpoint: str
) -> None:
    with proxied(bench, toy_endpoint, "GET drop", "GET drop") as proxy:
        result = run_bench(bench, "--model=flaky", f"--base-url={proxy.base_url}", subprocess=True)
    result.assert_outcomes(passed=4)
    assert proxy.counts == {"drop": 2}


# --- failure lines, truncated answers, resume ------------------------------------------------


def test_the_failure_line_shows_the_error_of_an_errored_attempt(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOWN", "task1_2")
    result = run_bench(bench)
    result.stdout.fnmatch_lines(
        [
            "*task1_2 incorrect: error: ModelCallError: 503 Service Unavailable from the fake "
            "endpoint (status error, 0 turns)*"
        ]
    )


def test_an_answer_cut_at_the_token_limit_is_named_in_the_reason_and_counted(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CUT", "task1_3")
    result = run_bench(bench)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*task1_3 incorrect: agent_invalid_action: answer does not start with GET, POST or "
            "FINISH(: *; the last answer was cut at the completion-token limit *",
            "medbench: model calls: 4, 0 retried * 1 answers cut at the token limit *",
        ]
    )
    cut = next(r for r in read_lines(run_folder(bench) / "runs.jsonl") if r["task_id"] == "task1_3")
    assert cut["status"] == "agent_invalid_action" and cut["finish_reason"] == "length"
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["model_calls"]["truncated_answers"] == 1 and summary["model_calls"]["attempts_ending_truncated"] == 1


def test_resume_reruns_attempts_that_ended_in_error_and_says_how_many(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOWN", "task1_2,task1_4")
    run_bench(bench).assert_outcomes(passed=2, failed=2)
    monkeypatch.delenv("FAKE_DOWN")
    second = run_bench(bench, "--resume")
    second.assert_outcomes(passed=2, skipped=2)
    second.stdout.fnmatch_lines(
        ["medbench: --resume ran 2 attempt(s) again that had ended as error or cassette_mismatch"]
    )
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 4 and summary["correct"] == 4 and summary["error"] == 0


# --- one session per results folder ----------------------------------------------------------


class BlockedSession:
    """A benchmark session (a real pytest process) held inside task1_2 until `release()`."""

    def __init__(self, bench: pytest.Pytester, *args: str) -> None:
        self.ready, self.go = bench.path / "ready.fifo", bench.path / "go.fifo"
        os.mkfifo(self.ready)
        os.mkfifo(self.go)
        # Opened read-write, so neither side ever blocks on open and no one reads a spurious EOF.
        self.ready_fd = os.open(self.ready, os.O_RDWR)
        self.go_fd = os.open(self.go, os.O_RDWR)
        env = {**os.environ, "FAKE_BLOCK": "task1_2", "FAKE_READY": str(self.ready), "FAKE_GO": str(self.go)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "--tasks=tasks.json",
                "--results-dir=results",
                "--ehr-scale=small",
                "-p",
                "no:cacheprovider",
                *args,
            ],
            cwd=bench.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        readable, _, _ = select.select([self.ready_fd], [], [], 300)  # a guard against a hang, not a timing
        assert readable, "the first session never reached task1_2"
        assert os.read(self.ready_fd, 100).decode().strip() == "task1_2"

    def release(self) -> str:
        os.write(self.go_fd, b"go\n")
        output, _ = self.process.communicate()
        os.close(self.ready_fd)
        os.close(self.go_fd)
        return output


@pytest.mark.parametrize("first_workers", [[], ["-n", "2"]], ids=["first-plain", "first-xdist"])
def test_a_second_session_on_a_folder_in_use_is_refused_and_the_first_run_stays_whole(
    bench: pytest.Pytester, first_workers: list[str]
) -> None:
    first = BlockedSession(bench, *first_workers)
    plain = run_bench(bench, subprocess=True)
    assert plain.ret == pytest.ExitCode.USAGE_ERROR
    plain.stdout.fnmatch_lines(
        [
            "*results folder results/reference is in use by another medbench session "
            "(session *, pid * on *, since *)*--run-name NAME or --results-dir DIR*"
        ]
    )
    resumed = run_bench(bench, "--resume", "-n", "2", subprocess=True)
    assert resumed.ret == pytest.ExitCode.USAGE_ERROR  # the controller opens the folder: one message, no test runs
    resumed.stdout.fnmatch_lines(["*results folder results/reference is in use by another medbench session*"])
    assert resumed.stdout.str().count("is in use by another medbench session") == 1
    output = first.release()
    assert first.process.returncode == 0, output
    runs = read_lines(run_folder(bench) / "runs.jsonl")
    assert sorted(r["task_id"] for r in runs) == ["task1_1", "task1_2", "task1_3", "task1_4"]
    assert len({r["session"] for r in runs}) == 1 and not (run_folder(bench) / "archive").exists()
    assert run_bench(bench, "--resume").ret == 0, "the folder is free again once the first session ended"


def test_the_xdist_controller_holds_the_folder_for_its_workers(bench: pytest.Pytester) -> None:
    first = BlockedSession(bench, "-n", "2")
    holder = json.loads((run_folder(bench) / ".session.json").read_text())
    assert holder["pid"] == first.process.pid, "the controller, not a worker, is named as the holder"
    assert first.release() and first.process.returncode == 0
