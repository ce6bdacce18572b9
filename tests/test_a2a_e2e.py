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
from test_replay_e2e import make_project, run_bench

from helpers.a2a_agents import (
    answers_nonsense,
    calls_unknown_tools,
    find_patient,
    floods,
    in_turn,
    never_answers,
    serve_agent,
    serve_garbage,
)

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
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/a/[\w-]{32}", data["mcp_server_url"]), (
            "a base URL: agents add /mcp"
        )
    transcripts = lines(tmp_path / RUN_FOLDER / "transcripts.jsonl")
    assert {t["protocol"] for t in transcripts} == {"a2a"}
    assert all(t["messages"][1]["tool_calls"][0]["function"]["name"] == "search_patients" for t in transcripts)
    tokens = [m["data"][0]["mcp_server_url"].rsplit("/", 1)[1] for m in agent.received]
    written = "".join(path.read_text() for path in (tmp_path / RUN_FOLDER).glob("*.json*"))
    assert not any(token in written for token in tokens), "attempt tokens never reach the result files"


# In task order (the session runs one attempt at a time): what the agent does, and what is recorded.
HOSTILE = {
    "task1_1": (never_answers, "error", "no answer within 3 s (--timeout)"),
    "task1_2": (answers_nonsense, "agent_invalid_action", "without FINISH"),
    "task1_3": (calls_unknown_tools('["S0000000"]'), "completed", ""),
    "task1_4": (floods(40), "limit_reached", ""),
}


def test_hostile_agents_get_recorded_statuses_never_a_hang_or_a_lost_attempt(tmp_path: Path) -> None:
    served, _ = serve_agent(in_turn(*(behaviour for behaviour, _, _ in HOSTILE.values())))
    with served:
        result = run_bench(make_project(tmp_path), f"--agent-url={served.url}", "--timeout=3", tasks=tuple(HOSTILE))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]  # recorded, incorrect: tests fail
    runs = records(tmp_path)
    assert {task: (r["status"], r["correct"]) for task, r in runs.items()} == {
        task: (status, False) for task, (_, status, _) in HOSTILE.items()
    }
    for task, (_, _, error) in HOSTILE.items():
        assert error in (runs[task]["error"] or ""), runs[task]
    assert runs["task1_1"]["error_source"] == "agent", "an agent that never answers is not graded, like a dead model"
    assert runs["task1_3"]["tool_errors"] == 1 and runs["task1_3"]["num_turns"] == 1, "the unknown tool ran nothing"
    assert runs["task1_4"]["num_turns"] == 8, "calls beyond the cap of 8 never ran"


def test_an_agent_answering_garbage_instead_of_json_rpc_gets_an_error_from_the_agent(tmp_path: Path) -> None:
    with serve_garbage() as served:
        result = run_bench(make_project(tmp_path), f"--agent-url={served.url}", tasks=TASKS[:1])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    record = records(tmp_path)["task1_1"]
    assert (record["status"], record["error_source"], record["correct"]) == ("error", "agent", False)


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
