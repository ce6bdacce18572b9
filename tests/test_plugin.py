"""The medbench pytest plugin, driven through pytester on tiny task files.

A scripted model and a stand-in environment replace the network parts here, so these tests
exercise the plugin itself (options, parametrization, result files, xdist, resume, gates,
json-report) with the real agent loop and the real task1 grader; the end-to-end run on the
embedded FHIR server with the reference model lives in test_plugin_e2e.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# The conftest of each pytester project: a scripted model whose behaviour per task comes from
# environment variables (so the task file, and with it the task-set hash, stays the same).
FAKES = '''
import json, os, re, signal, threading
from pathlib import Path

import pytest

from medbench.models.client import ModelCallError, ModelReply
from medbench.environment import Environment

pytest_plugins = ["medbench.plugin"]


def _wanted(name, task_id):
    return task_id in os.environ.get(name, "").split(",")


# With FAKE_REPORTS set: every attempt pytest reports as passed is appended there (flushed) as it
# is reported, and a FAKE_KILL attempt waits until at least one was reported.
REPORTED = threading.Event()


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and os.environ.get("FAKE_REPORTS"):
        with open(os.environ["FAKE_REPORTS"], "a") as reports:
            reports.write(report.nodeid + "\\n")
        REPORTED.set()


class ScriptedModel:
    """FINISHes with the MRN named after `expected=` in the instruction, unless told otherwise."""

    def complete(self, messages):
        prompt = messages[0]["content"]
        task_id = re.search(r"id=(task\\w+)", prompt).group(1)
        log = Path(os.environ["FAKE_LOG"])
        with log.open("a") as handle:
            handle.write(task_id + "\\n")
        calls = log.read_text().split().count(task_id)
        if _wanted("FAKE_INTERRUPT", task_id):
            raise KeyboardInterrupt
        if _wanted("FAKE_KILL", task_id) and not Path(os.environ["FAKE_LOG"] + ".killed").exists():
            Path(os.environ["FAKE_LOG"] + ".killed").write_text(task_id)
            if os.environ.get("FAKE_REPORTS"):
                REPORTED.wait(timeout=60)
            os.kill(os.getpid(), signal.SIGKILL)
        if _wanted("FAKE_DOWN", task_id):
            raise ModelCallError("503 Service Unavailable from the fake endpoint")
        if _wanted("FAKE_BLOCK", task_id):
            # Say "inside task_id" on one FIFO, then wait for a line on another: the test decides when to go on.
            with open(os.environ["FAKE_READY"], "w") as ready:
                ready.write(task_id + "\\n")
            with open(os.environ["FAKE_GO"]) as go:
                go.readline()
        if _wanted("FAKE_CUT", task_id):
            return ModelReply(content="The patient you are looking for is", prompt_tokens=100, completion_tokens=7,
                              latency_s=0.01, retries=0, finish_reason="length")
        answer = re.search(r"expected=(\\w+)", prompt).group(1)
        if _wanted("FAKE_WRONG", task_id) or (_wanted("FAKE_FLAKY", task_id) and calls % 2 == 0):
            answer = "S0000000"
        think = "<think>which patient?</think>" if _wanted("FAKE_THINK", task_id) else ""
        return ModelReply(content=f'{think}FINISH(["{answer}"])', prompt_tokens=100, completion_tokens=7,
                          latency_s=0.01, retries=0)


@pytest.fixture(scope="session")
def medbench_environment():
    yield Environment("http://127.0.0.1:9/fhir/", "http://localhost:8080/fhir/", "fake:environment", lambda: None)


@pytest.fixture(scope="session")
def medbench_gateway(medbench_environment):
    return None


class ScriptedToolModel(ScriptedModel):
    """Tools mode: calls finish with the MRN named after `expected=`."""

    def complete_with_tools(self, messages, tools):
        from medbench.models.tool_reply import ToolCall, ToolReply

        answer = re.search(r"expected=(\\w+)", messages[0]["content"]).group(1)
        call = ToolCall(id="call_1", name="finish", arguments=json.dumps({"answers": [answer]}))
        return ToolReply(content="", tool_calls=(call,), prompt_tokens=300, completion_tokens=9, latency_s=0.01,
                         retries=0)


@pytest.fixture(scope="session")
def medbench_model():
    return ScriptedModel() if os.environ.get("FAKE_NO_TOOLS") else ScriptedToolModel()
'''

BENCH_TEST = Path(__file__).resolve().parents[1] / "tests_bench" / "test_medagentbench.py"


def task_records(count: int, category: int = 1) -> list[dict[str, Any]]:
    records = []
    for number in range(1, count + 1):
        task_id = f"task{category}_{number}"
        mrn = f"S{1000000 + number}"
        record: dict[str, Any] = {
            "id": task_id,
            "instruction": f"Look up the patient. id={task_id} expected={mrn}",
            "context": "",
            "sol": [mrn],
        }
        if category != 1:
            record["eval_MRN"] = mrn
        records.append(record)
    return records


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project with the benchmark test file, the fakes and a 4-task file."""
    pytester.makeconftest(FAKES)
    pytester.makepyfile(test_medagentbench=BENCH_TEST.read_text())
    write_tasks(pytester, task_records(4))
    monkeypatch.setenv("FAKE_LOG", str(pytester.path / "calls.log"))
    for name in (
        "FAKE_INTERRUPT",
        "FAKE_KILL",
        "FAKE_DOWN",
        "FAKE_WRONG",
        "FAKE_FLAKY",
        "FAKE_THINK",
        "FAKE_BLOCK",
        "FAKE_CUT",
        "FAKE_NO_TOOLS",
        "FAKE_REPORTS",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("MEDBENCH_MODEL", "MEDBENCH_RESULTS_DIR", "MEDBENCH_TASKS", "MEDBENCH_MIN_ACCURACY"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def write_tasks(pytester: pytest.Pytester, records: list[dict[str, Any]]) -> None:
    (pytester.path / "tasks.json").write_text(json.dumps(records))


def run_bench(pytester: pytest.Pytester, *args: str, subprocess: bool = False) -> pytest.RunResult:
    base = ("--tasks=tasks.json", "--results-dir=results", "--ehr-scale=small", "-p", "no:cacheprovider")
    if subprocess:
        return pytester.runpytest_subprocess(*base, *args)
    return pytester.runpytest(*base, *args, no_reraise_ctrlc=True)


def run_folder(pytester: pytest.Pytester, slug: str = "reference") -> Path:
    return pytester.path / "results" / slug


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def model_calls(pytester: pytest.Pytester) -> list[str]:
    log = pytester.path / "calls.log"
    return log.read_text().split() if log.exists() else []


# --- options -------------------------------------------------------------------------------


def test_help_shows_every_option_in_the_medbench_group(bench: pytest.Pytester) -> None:
    result = bench.runpytest("--help")
    text = result.stdout.str()
    group = text[text.index("medbench benchmark") :]
    for flag in (
        "--model",
        "--base-url",
        "--api-key",
        "--api-key-env",
        "--extra-header",
        "--temperature",
        "--max-tokens",
        "--tasks",
        "--task-seed",
        "--write-tasks",
        "--official-dir",
        "--fhir-url",
        "--fhir-display-url",
        "--ehr-seed",
        "--ehr-scale",
        "--max-rounds",
        "--protocol",
        "--grader",
        "--post-mode",
        "--strip-think",
        "--results-dir",
        "--run-name",
        "--resume",
        "--repeats",
        "--min-accuracy",
        "--min-task-accuracy",
        "--report",
        "--timeout",
        "--model-timeout",
        "--retry-budget",
        "--timeout-retries",
    ):
        assert flag in group, flag


def test_an_unknown_protocol_is_a_usage_error_naming_both(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--protocol=json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "argument --protocol: invalid choice: 'json'" in result.stderr.str() and "'tools'" in result.stderr.str()


def test_tools_protocol_runs_each_task_as_a_tools_conversation_and_records_the_protocol(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--protocol=tools")
    result.assert_outcomes(passed=4)
    folder = run_folder(bench)
    assert {line["modes"]["protocol"] for line in read_lines(folder / "runs.jsonl")} == {"tools"}
    assert json.loads((folder / "summary.json").read_text())["modes"]["protocol"] == "tools"
    transcript = read_lines(folder / "transcripts.jsonl")[0]
    assert transcript["messages"][1]["tool_calls"][0]["function"]["name"] == "finish"
    assert transcript["history"][-1]["content"] == 'FINISH(["S1000001"])'


def test_a_model_without_tool_calling_ends_each_tools_task_as_an_error_saying_so(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NO_TOOLS", "1")
    result = run_bench(bench, "--protocol=tools")
    result.assert_outcomes(failed=4)
    line = read_lines(run_folder(bench) / "runs.jsonl")[0]
    assert line["status"] == "error" and "cannot call tools" in line["error"]


def test_an_unreadable_task_gate_is_a_usage_error(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--min-task-accuracy", "task11=0.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "taskN=X" in result.stderr.str()


def test_options_fall_back_to_environment_then_ini(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    bench.makeini("[pytest]\nmedbench_model = from-ini\nmedbench_max_rounds = 3\n")
    monkeypatch.setenv("MEDBENCH_MODEL", "from/env")
    result = run_bench(bench)
    assert result.ret == 0
    manifest = json.loads((run_folder(bench, "from_env") / "run.json").read_text())
    assert manifest["identity"]["model"] == "from/env"
    assert manifest["identity"]["max_rounds"] == 3


# --- parametrization -----------------------------------------------------------------------


def test_one_test_per_task_with_task_ids_and_category_markers(bench: pytest.Pytester) -> None:
    write_tasks(bench, task_records(2, category=1) + task_records(2, category=5))
    result = run_bench(bench, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*test_task[[]task1_1[]]",
            "*test_task[[]task1_2[]]",
            "*test_task[[]task5_1[]]",
            "*test_task[[]task5_2[]]",
            "4 tests collected*",
        ]
    )
    selected = run_bench(bench, "--collect-only", "-q", "-m", "task5")
    selected.stdout.fnmatch_lines(["*test_task[[]task5_1[]]", "*test_task[[]task5_2[]]", "2/4 tests collected*"])
    by_keyword = run_bench(bench, "--collect-only", "-q", "-k", "task1_2")
    by_keyword.stdout.fnmatch_lines(["*test_task[[]task1_2[]]", "1/4 tests collected*"])


def test_repeats_run_every_task_k_times_and_add_pass_at_k(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tasks(bench, task_records(2))
    monkeypatch.setenv("FAKE_FLAKY", "task1_2")
    result = run_bench(bench, "--repeats", "3", "-v")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_task[[]task1_1-attempt3[]] PASSED*", "*test_task[[]task1_2-attempt2[]] FAILED*"]
    )
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 6 and summary["correct"] == 5
    assert summary["repeats"] == {
        "k": 3,
        "tasks": 2,
        "pass@1": pytest.approx((1 + 2 / 3) / 2, abs=1e-4),
        "pass@2": 1.0,
        "pass^2": pytest.approx((1 + 1 / 3) / 2, abs=1e-4),
        "pass@3": 1.0,
        "pass^3": 0.5,
    }
    attempts = sorted((r["task_id"], r["attempt"]) for r in read_lines(run_folder(bench) / "runs.jsonl"))
    assert attempts == [("task1_1", 1), ("task1_1", 2), ("task1_1", 3), ("task1_2", 1), ("task1_2", 2), ("task1_2", 3)]


def test_write_tasks_saves_the_selected_task_set_in_the_upstream_format(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--collect-only", "-q", "--write-tasks=out/tasks.json")
    assert result.ret == 0
    written = json.loads((bench.path / "out" / "tasks.json").read_text())
    assert written == json.loads((bench.path / "tasks.json").read_text())


# --- verdicts and result files -------------------------------------------------------------


def test_correct_task_passes_and_incorrect_fails_with_reason_and_status_only(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_3")
    result = run_bench(bench)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*task1_3 incorrect: * (status completed, 1 turns)*"])
    assert "Look up the patient" not in result.stdout.str(), "the prompt must not be dumped into the terminal"


def test_strip_think_reaches_the_agent_loop(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_THINK", "task1_1")
    official = run_bench(bench, "--results-dir=official")
    official.assert_outcomes(passed=3, failed=1)
    official.stdout.fnmatch_lines(
        [
            "*task1_1 incorrect: agent_invalid_action: answer does not start with GET, POST or FINISH(: "
            "'<think>which patient?</think>FINISH(*' (status agent_invalid_action, 1 turns)*"
        ]
    )
    run_bench(bench, "--strip-think").assert_outcomes(passed=4)


def test_result_files_keep_upstream_fields_and_add_provenance(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_3")
    run_bench(bench).assert_outcomes(passed=3, failed=1)
    folder = run_folder(bench)
    runs = read_lines(folder / "runs.jsonl")
    assert [r["task_id"] for r in sorted(runs, key=lambda r: r["index"])] == [
        "task1_1",
        "task1_2",
        "task1_3",
        "task1_4",
    ]
    wrong = next(r for r in runs if r["task_id"] == "task1_3")
    assert {"index", "task_id", "status", "correct", "result", "num_turns", "time"} <= set(wrong)
    assert wrong["status"] == "completed" and wrong["correct"] is False and wrong["result"] == ["S0000000"]
    assert wrong["reason"] and wrong["prompt_tokens"] == 100 and wrong["attempt"] == 1
    transcripts = {t["transcript_id"]: t for t in read_lines(folder / "transcripts.jsonl")}
    assert transcripts[wrong["transcript_id"]]["history"][1] == {"role": "agent", "content": 'FINISH(["S0000000"])'}
    summary = json.loads((folder / "summary.json").read_text())
    assert {
        key: summary[key]
        for key in (
            "model",
            "total",
            "completed",
            "correct",
            "invalid_action",
            "limit_reached",
            "context_limit",
            "error",
            "accuracy",
        )
    } == {
        "model": "reference",
        "total": 4,
        "completed": 4,
        "correct": 3,
        "invalid_action": 0,
        "limit_reached": 0,
        "context_limit": 0,
        "error": 0,
        "accuracy": 75.0,
    }
    assert summary["task_breakdown"]["task1"]["total"] == 4 and summary["task_breakdown"]["task1"]["correct"] == 3
    assert summary["task_set"]["name"] == "file:tasks.json" and len(summary["task_set"]["sha256"]) == 64
    assert summary["modes"] == {
        "protocol": "text",
        "grader": "official",
        "post_mode": "official",
        "max_rounds": 8,
        "strip_think": False,
    }
    assert summary["environment"]["fingerprint"] == "fake:environment"
    assert summary["accuracy_ci95"][0] < 75.0 < summary["accuracy_ci95"][1]
    assert summary["tokens"] == {"prompt": 400, "completion": 28, "total": 428}
    assert summary["complete"] is True and summary["elapsed_seconds"] >= 0


def test_terminal_summary_prints_the_category_table(bench: pytest.Pytester) -> None:
    result = run_bench(bench)
    result.stdout.fnmatch_lines(
        [
            "*medbench summary*",
            "category*total*correct*accuracy %*",
            "task1*4*4*100.0*",
            "all*4*4*100.0*",
            "accuracy 100.0% (95% CI *) over 4 attempts, run complete*",
        ]
    )


def test_model_name_becomes_a_filesystem_safe_folder_with_run_name_level(bench: pytest.Pytester) -> None:
    run_bench(bench, "--model=anthropic/claude-x", "--run-name=nightly 1").assert_outcomes(passed=4)
    assert (bench.path / "results" / "anthropic_claude-x" / "nightly_1" / "summary.json").exists()


def test_secrets_never_reach_result_files_or_terminal(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--model=acme/m1", "--api-key=sk-secret-123", "--extra-header", "X-Tenant=hdr-secret-456")
    result.assert_outcomes(passed=4)
    folder = run_folder(bench, "acme_m1")
    written = "".join(p.read_text() for p in folder.iterdir() if p.is_file())
    assert "sk-secret-123" not in written + result.stdout.str() + result.stderr.str()
    assert "hdr-secret-456" not in written + result.stdout.str() + result.stderr.str()
    assert json.loads((folder / "run.json").read_text())["details"]["endpoint"]["extra_header_names"] == ["X-Tenant"]


def test_json_report_gets_per_test_metadata(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_2")
    run_bench(bench, "--json-report", "--json-report-file=report.json").assert_outcomes(passed=3, failed=1)
    tests = {
        t["nodeid"].split("[")[1].rstrip("]"): t for t in json.loads((bench.path / "report.json").read_text())["tests"]
    }
    assert tests["task1_2"]["outcome"] == "failed"
    assert tests["task1_2"]["metadata"] == {
        "task_id": "task1_2",
        "attempt": 1,
        "status": "completed",
        "correct": False,
        "reason": tests["task1_2"]["metadata"]["reason"],
        "num_turns": 1,
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "latency_s": 0.01,
        "elapsed_s": tests["task1_2"]["metadata"]["elapsed_s"],
    }
    assert {"correct": True} in tests["task1_1"]["user_properties"]


def test_sessions_without_benchmark_tests_leave_results_alone(bench: pytest.Pytester) -> None:
    bench.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = run_bench(bench, "test_plain.py")
    result.assert_outcomes(passed=1)
    assert not (bench.path / "results").exists()
    assert "medbench summary" not in result.stdout.str()


def test_a_new_run_archives_the_previous_one_instead_of_mixing(bench: pytest.Pytester) -> None:
    run_bench(bench).assert_outcomes(passed=4)
    run_bench(bench, "-k", "task1_1").assert_outcomes(passed=1)
    folder = run_folder(bench)
    assert [r["task_id"] for r in read_lines(folder / "runs.jsonl")] == ["task1_1"]
    archived = list((folder / "archive").glob("*/runs.jsonl"))
    assert len(archived) == 1 and len(read_lines(archived[0])) == 4
    assert json.loads((folder / "summary.json").read_text())["total"] == 1


def test_report_option_writes_the_cross_model_report_of_the_results_dir(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--report=out")
    result.stdout.fnmatch_lines(["report: out/leaderboard.csv"])
    assert (bench.path / "out" / "report.html").stat().st_size > 0
    assert (bench.path / "out" / "plots" / "leaderboard.png").stat().st_size > 0


def test_report_option_prints_why_it_skipped_and_keeps_the_exit_status(bench: pytest.Pytester) -> None:
    assert run_bench(bench).ret == 0
    other = bench.path / "results" / "other-model"
    other.mkdir()
    (other / "runs.jsonl").write_text("not json\n")
    result = run_bench(bench, "--report=out")
    result.stdout.fnmatch_lines(["--report skipped: *"])
    assert result.ret == 0


# --- xdist ---------------------------------------------------------------------------------


def test_xdist_workers_write_one_run_without_duplicates(bench: pytest.Pytester) -> None:
    write_tasks(bench, task_records(8))
    result = run_bench(bench, "-n", "2", "--json-report", "--json-report-file=report.json", subprocess=True)
    result.assert_outcomes(passed=8)
    report = json.loads((bench.path / "report.json").read_text())
    assert all(test["metadata"]["correct"] is True for test in report["tests"])
    runs = read_lines(run_folder(bench) / "runs.jsonl")
    assert sorted(r["task_id"] for r in runs) == sorted(f"task1_{n}" for n in range(1, 9))
    assert len({r["session"] for r in runs}) == 1
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 8 and summary["correct"] == 8 and summary["complete"] is True


def test_killed_xdist_worker_fails_the_session_and_resume_completes_it(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tasks(bench, task_records(6))
    monkeypatch.setenv("FAKE_KILL", "task1_3")
    first = run_bench(bench, "-n", "2", "--min-accuracy", "0.5", subprocess=True)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.stdout.fnmatch_lines(["GATE FAILED: 1 task attempt(s) ended without a model verdict*"])
    recorded = {r["task_id"] for r in read_lines(run_folder(bench) / "runs.jsonl")}
    assert "task1_3" not in recorded
    second = run_bench(bench, "-n", "2", "--resume", subprocess=True)
    second.assert_outcomes(passed=6 - len(recorded), skipped=len(recorded))
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 6 and summary["correct"] == 6 and summary["complete"] is True


# --- resume --------------------------------------------------------------------------------


def test_interrupted_run_resumes_without_rerunning_finished_tasks(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_INTERRUPT", "task1_3")
    first = run_bench(bench)
    assert first.ret == pytest.ExitCode.INTERRUPTED
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 2 and summary["complete"] is False
    monkeypatch.delenv("FAKE_INTERRUPT")
    second = run_bench(bench, "--resume")
    second.assert_outcomes(passed=2, skipped=2)
    assert sorted(model_calls(bench)) == ["task1_1", "task1_2", "task1_3", "task1_3", "task1_4"]
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 4 and summary["correct"] == 4 and summary["complete"] is True
    assert len(summary["sessions"]) == 2


def test_killed_run_resumes_to_a_complete_summary(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KILL", "task1_3")
    first = run_bench(bench, subprocess=True)
    assert first.ret not in (0, 1)
    assert not (run_folder(bench) / "summary.json").exists()
    second = run_bench(bench, "--resume", subprocess=True)
    second.assert_outcomes(passed=2, skipped=2)
    summary = json.loads((run_folder(bench) / "summary.json").read_text())
    assert summary["total"] == 4 and summary["correct"] == 4 and summary["complete"] is True


def test_a_killed_run_loses_no_attempt_that_pytest_reported(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results lines are fsynced in groups by a background thread, but written before the attempt
    is reported: a kill -9 with attempts in flight loses none that pytest showed as done."""
    write_tasks(bench, task_records(8))
    monkeypatch.setenv("FAKE_KILL", "task1_6")
    monkeypatch.setenv("FAKE_REPORTS", str(bench.path / "reported.log"))
    first = run_bench(bench, "--concurrency=2", subprocess=True)
    assert first.ret not in (0, 1)
    reported = set(re.findall(r"\[(task1_\d+)\]", (bench.path / "reported.log").read_text()))
    recorded = {r["task_id"] for r in read_lines(run_folder(bench) / "runs.jsonl")}
    assert reported
    assert reported <= recorded
    assert "task1_6" not in recorded
    second = run_bench(bench, "--resume", "--concurrency=2", subprocess=True)
    second.assert_outcomes(passed=8 - len(recorded), skipped=len(recorded))


def test_resume_refuses_a_changed_grader_naming_the_difference(bench: pytest.Pytester) -> None:
    run_bench(bench).assert_outcomes(passed=4)
    result = run_bench(bench, "--resume", "--grader=corrected")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--resume refused*grader: 'official' -> 'corrected'*"])
    assert len(read_lines(run_folder(bench) / "runs.jsonl")) == 4


def test_state_grader_without_execute_post_mode_is_a_usage_error(bench: pytest.Pytester) -> None:
    result = run_bench(bench, "--grader=state")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--grader=state decides from the resources each attempt created*"
            "needs --post-mode=execute*not --post-mode=official*"
        ]
    )
    assert model_calls(bench) == []


def test_resume_refuses_a_changed_task_set(bench: pytest.Pytester) -> None:
    run_bench(bench).assert_outcomes(passed=4)
    write_tasks(bench, task_records(5))
    result = run_bench(bench, "--resume", "-n", "2", subprocess=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--resume refused*task_set_sha256*"])


def test_resume_of_a_complete_run_runs_nothing_and_keeps_the_summary(bench: pytest.Pytester) -> None:
    run_bench(bench).assert_outcomes(passed=4)
    again = run_bench(bench, "--resume")
    again.assert_outcomes(skipped=4)
    assert again.ret == 0
    assert json.loads((run_folder(bench) / "summary.json").read_text())["total"] == 4


# --- gates ---------------------------------------------------------------------------------


def test_gate_that_holds_exits_zero_despite_failed_tests(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_4")
    result = run_bench(bench, "--min-accuracy", "0.75", "--min-task-accuracy", "task1=0.7")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*gates passed: overall accuracy >= 75.0%, task1 accuracy >= 70.0%*"])


def test_gate_that_fails_exits_one_with_one_line_per_failed_gate(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_4")
    result = run_bench(
        bench, "--min-accuracy", "90%", "--min-task-accuracy", "task1=0.8", "--min-task-accuracy", "task5=0.5"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "GATE FAILED: overall accuracy >= 90.0%: got 75.0% (3/4)",
            "GATE FAILED: task1 accuracy >= 80.0%: got 75.0% (3/4)",
            "GATE FAILED: task5 accuracy >= 50.0%: no task5 attempts recorded",
        ]
    )


def test_gate_fails_on_infrastructure_errors_whatever_the_accuracy(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_DOWN", "task1_2")
    result = run_bench(bench, "--min-accuracy", "0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["GATE FAILED: 1 task attempt(s) ended without a model verdict*"])


def test_gate_exit_status_reaches_json_report(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_4")
    result = run_bench(bench, "--min-accuracy", "0.5", "--json-report", "--json-report-file=report.json")
    assert result.ret == 0
    assert json.loads((bench.path / "report.json").read_text())["exitcode"] == 0


def test_gates_never_mask_an_interrupted_session(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_INTERRUPT", "task1_4")
    result = run_bench(bench, "--min-accuracy", "0.1")
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_without_gates_failed_tests_exit_one_as_in_plain_pytest(
    bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRONG", "task1_4")
    assert run_bench(bench).ret == pytest.ExitCode.TESTS_FAILED


# --- environment ---------------------------------------------------------------------------


def test_unreachable_external_fhir_url_is_named_in_the_error(bench: pytest.Pytester) -> None:
    bench.makeconftest(
        FAKES.split('@pytest.fixture(scope="session")\ndef medbench_environment')[0]
        + "@pytest.fixture(scope='session')\ndef medbench_model():\n    return ScriptedModel()\n"
    )
    result = run_bench(bench, "--fhir-url=http://127.0.0.1:9/fhir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*FHIR server at http://127.0.0.1:9/fhir/ is not reachable*"])
    assert not run_folder(bench).exists()


def test_unreachable_model_endpoint_stops_the_session_naming_the_url(bench: pytest.Pytester) -> None:
    bench.makeconftest(FAKES.split('@pytest.fixture(scope="session")\ndef medbench_model')[0])
    result = run_bench(bench, "--model=some-model", "--base-url=http://127.0.0.1:9/v1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["*model endpoint http://127.0.0.1:9/v1 is not reachable (ConnectionError); check --base-url*"]
    )
    assert result.stdout.str().count("is not reachable") == 1
    assert not run_folder(bench, "some-model").exists()
