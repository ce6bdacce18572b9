"""Agents under test through the pytest plugin (`--agent-url`), in real pytest sessions of a scratch
project: an agent written with a2a-sdk to the public evaluators' conventions is benchmarked like a
model; hostile agents end as recorded statuses; a recording replays with the agent stopped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.a2a_agents import (
    answers_nonsense,
    calls_unknown_tools,
    find_patient,
    floods,
    never_answers,
    serve_agent,
    serve_garbage,
)
from test_replay_e2e import make_project, run_bench

pytestmark = pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")

TASKS = ("task1_1", "task1_2", "task1_3")
RUN_FOLDER = Path("results") / "a2a-agent"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def records(project: Path) -> dict[str, dict[str, Any]]:
    return {record["task_id"]: record for record in lines(project / RUN_FOLDER / "runs.jsonl")}


def test_an_a2a_sdk_agent_following_the_evaluators_conventions_is_benchmarked_like_a_model(tmp_path: Path) -> None:
    served, agent = serve_agent(find_patient)
    with served:
        result = run_bench(make_project(tmp_path), f"--agent-url={served.url}", "--concurrency=3", tasks=TASKS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    runs = records(tmp_path)
    assert {task: (r["status"], r["correct"]) for task, r in runs.items()} == {t: ("completed", True) for t in TASKS}
    assert {r["modes"]["protocol"] for r in runs.values()} == {"a2a"}
    summary = json.loads((tmp_path / RUN_FOLDER / "summary.json").read_text())
    assert summary["modes"]["protocol"] == "a2a" and summary["comparability"]["level"] == "none"
    assert "not comparable" in summary["comparability"]["note"]
    assert summary["endpoint"]["agent_url"] == served.url and summary["endpoint"]["max_tool_calls"] == 8
    # What the agent received: one new conversation per attempt, the evaluators' two parts.
    assert len(agent.received) == len(TASKS)
    contexts = {message["message_context_id"] for message in agent.received}
    assert len(contexts) == len(TASKS), "each attempt opens a new conversation (no context id is reused)"
    for message in agent.received:
        assert message["role"] == "user"
        assert "Question:" in message["text"] and "FINISH([" in message["text"]
        (data,) = message["data"]
        assert set(data) == {"mcp_server_url", "max_iterations", "max_tool_calls"} and data["max_iterations"] == 8
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/a/[\w-]{32}", data["mcp_server_url"]), "a base URL: agents add /mcp"
    transcripts = lines(tmp_path / RUN_FOLDER / "transcripts.jsonl")
    assert {t["protocol"] for t in transcripts} == {"a2a"}
    assert all(t["messages"][1]["tool_calls"][0]["function"]["name"] == "search_patients" for t in transcripts)
    tokens = [m["data"][0]["mcp_server_url"].rsplit("/", 1)[1] for m in agent.received]
    written = "".join(path.read_text() for path in (tmp_path / RUN_FOLDER).glob("*.json*"))
    assert not any(token in written for token in tokens), "attempt tokens never reach the result files"


HOSTILE = {
    "never answers": (lambda: serve_agent(never_answers)[0], "error", "no answer within 3 s (--timeout)"),
    "answers garbage": (serve_garbage, "error", ""),
    "answers without FINISH": (lambda: serve_agent(answers_nonsense)[0], "agent_invalid_action", "without FINISH"),
    "calls unknown tools": (lambda: serve_agent(calls_unknown_tools('["S0000000"]'))[0], "completed", ""),
    "floods tool calls": (lambda: serve_agent(floods(40))[0], "limit_reached", ""),
}


@pytest.mark.parametrize("behaviour", list(HOSTILE))
def test_a_hostile_agent_gets_a_recorded_status_never_a_hang_or_a_lost_attempt(behaviour: str, tmp_path: Path) -> None:
    serve, status, error = HOSTILE[behaviour]
    with serve() as served:
        result = run_bench(make_project(tmp_path), f"--agent-url={served.url}", "--timeout=3", tasks=TASKS[:1])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]  # recorded, incorrect: the test fails
    record = records(tmp_path)["task1_1"]
    assert (record["status"], record["correct"]) == (status, False)
    assert error in (record["error"] or "")
    if status == "error":
        assert record["error_source"] == "agent"
    if behaviour == "calls unknown tools":
        assert record["tool_errors"] == 1 and record["num_turns"] == 1
    if behaviour == "floods tool calls":
        assert record["num_turns"] == 8, "calls beyond the cap never ran"


def test_a_recorded_agent_run_replays_to_identical_verdicts_with_the_agent_stopped(tmp_path: Path) -> None:
    recorded, replayed = make_project(tmp_path / "recorded"), make_project(tmp_path / "replayed")
    served, agent = serve_agent(find_patient)
    with served:
        first = run_bench(recorded, f"--agent-url={served.url}", "--record-mode=once", "--concurrency=2", tasks=TASKS)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.url, trust_env=False)  # the agent is stopped
    shutil.copytree(recorded / "cassettes", replayed / "cassettes")
    second = run_bench(replayed, f"--agent-url={served.url}", tasks=TASKS)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert "medbench cassettes: replaying" in second.stdout
    verdicts = {task: (r["status"], r["correct"], r["result"]) for task, r in records(recorded).items()}
    assert {task: (r["status"], r["correct"], r["result"]) for task, r in records(replayed).items()} == verdicts
    folder = recorded / "cassettes" / "a2a-agent"
    cassette = json.loads((folder / "task1_1.json").read_text())
    uris = [interaction["request"]["uri"] for interaction in cassette["interactions"]]
    assert any(uri.endswith("/.well-known/agent-card.json") for uri in uris), "the A2A exchange is in the cassette"
    assert any("/Patient?" in uri for uri in uris), "so is the FHIR traffic of the agent's tool calls"
    tokens = [m["data"][0]["mcp_server_url"].rsplit("/", 1)[1] for m in agent.received]
    saved = "".join(path.read_text() for path in folder.iterdir() if path.is_file())
    assert not any(token in saved for token in tokens), "attempt tokens never reach a cassette"
    assert (folder / "task1_1.a2a.jsonl").exists()
