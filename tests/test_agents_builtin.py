"""The built-in A2A agents (`python -m medbench.agents serve`): the reference model as an agent scores
300/300 on the generated set through A2A and MCP, here through the pytest-free runner."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medbench.agents.server import AgentServer
from medbench.models.builtin.server import ReferenceServer
from medbench.models.client import OpenAIChatModel
from medbench.runner import run_benchmark
from medbench.settings import Settings


@pytest.fixture(scope="module")
def reference_agent() -> Iterator[str]:
    with ReferenceServer() as endpoint, OpenAIChatModel("reference", endpoint.base_url, api_key="reference") as model:
        with AgentServer(model, "reference") as agent:
            yield agent.url


def test_the_reference_agent_scores_every_generated_task_through_a2a_and_mcp(
    reference_agent: str, tmp_path: Path
) -> None:
    settings = Settings(
        agent_url=reference_agent,
        protocol="a2a",
        model="a2a-agent",
        ehr_scale="small",
        concurrency=8,
        results_dir=tmp_path,
    )
    summary = run_benchmark(settings)
    assert summary is not None
    assert (summary["total"], summary["correct"]) == (300, 300)
    assert summary["modes"]["protocol"] == "a2a" and summary["comparability"]["level"] == "none"


def test_the_agent_card_names_the_agent_and_its_url(reference_agent: str) -> None:
    card = httpx.get(reference_agent + ".well-known/agent-card.json", trust_env=False).json()
    assert card["name"] == "medbench reference agent" and card["url"] == reference_agent
    assert card["capabilities"]["streaming"] is False and card["skills"]


def test_the_cli_serves_a_built_in_agent_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "medbench.agents", "serve", "--model", "give-up", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"serving A2A at (\S+)", line).group(1)
        assert (
            httpx.get(url + ".well-known/agent-card.json", trust_env=False).json()["name"] == "medbench give-up agent"
        )
    finally:
        process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
