"""The example agent of docs/agents.md (examples/a2a_agent.py) really benchmarks: served against the
built-in reference model as its OpenAI-compatible endpoint, it passes the tasks it is given."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from test_replay_e2e import ROOT, make_project, run_bench

from medbench.models.builtin.server import ReferenceServer

TASKS = ("task1_1", "task4_1", "task9_1")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_documented_example_agent_is_benchmarked_and_passes(tmp_path: Path) -> None:
    port = free_port()
    with ReferenceServer() as endpoint:
        environment = {
            **os.environ,
            "OPENAI_BASE_URL": endpoint.base_url,
            "OPENAI_API_KEY": "reference",
            "MODEL": "reference",
        }
        agent = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "a2a_agent.py"), str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 60
            while True:  # the example prints nothing when it listens: ask for its card until it answers
                try:
                    httpx.get(url + ".well-known/agent-card.json", trust_env=False).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert agent.poll() is None and time.monotonic() < deadline, (
                        agent.stderr.read() if agent.stderr else ""
                    )
                    time.sleep(0.2)
            result = run_bench(make_project(tmp_path), f"--agent-url={url}", tasks=TASKS)
        finally:
            agent.terminate()
            agent.wait(timeout=30)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    runs = [json.loads(line) for line in (tmp_path / "results" / "a2a-agent" / "runs.jsonl").read_text().splitlines()]
    assert {(r["task_id"], r["status"], r["correct"]) for r in runs} == {(t, "completed", True) for t in TASKS}
