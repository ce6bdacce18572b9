"""Agent attempts in flight together: each has its own MCP endpoint, call log and write namespace.

Two attempts of one task run at once through the real attempt pool; the agent (written with
a2a-sdk, tests/helpers/a2a_agents.py) POSTs a marked Observation through its MCP tools, waits at
a barrier until the other attempt has POSTed too, then searches: each must find exactly its own
write. A barrier that breaks means the attempts were not in flight together.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.a2a_agents import result_text, serve_agent, tools_session
from medbench.a2a.client import A2AAgent
from medbench.ehr.cache import ensure_database
from medbench.environment import Environment
from medbench.fhir import FhirServer
from medbench.results.writer import RunFolder
from medbench.runner.attempts import AttemptPool, AttemptRunner
from medbench.runner.session import Case
from medbench.settings import Settings
from medbench.tasks.task import Task, TaskSet

pytestmark = pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")

DISPLAY = "http://localhost:8080/fhir/"
CODE = "A2A-ISOLATION"
WAIT_S = 30


@pytest.fixture(scope="module")
def environment() -> Iterator[Environment]:
    with FhirServer(ensure_database(0, "small")) as server:
        yield Environment(server.base_url, DISPLAY, "embedded:test", "embedded")


@pytest.fixture(scope="module")
def patient(environment: Environment) -> str:
    with environment.gateway() as gateway:
        return json.loads(gateway.get(f"{DISPLAY}Patient?_count=1").text)["entry"][0]["resource"]["id"]


def test_agent_attempts_in_flight_together_see_only_their_own_endpoint_calls_and_writes(
    environment: Environment, patient: str, tmp_path: Path
) -> None:
    barrier = threading.Barrier(2, timeout=WAIT_S)
    urls: list[str] = []

    async def post_then_search(prompt: str, data: dict[str, Any]) -> str:
        urls.append(data["mcp_server_url"])
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "valueString": "mine",
            "code": {"coding": [{"system": "http://loinc.org", "code": CODE}]},
            "subject": {"reference": f"Patient/{patient}"},
        }
        async with tools_session(data) as session:
            created = await session.call_tool(
                "create_resource", {"resource_type": "Observation", "resource": observation}
            )
            assert not created.isError, result_text(created)
            await asyncio.to_thread(barrier.wait)  # the other attempt has POSTed too
            found = await session.call_tool("search_observations_by_code", {"code": CODE, "patient": patient})
        return f'FINISH(["{json.loads(result_text(found))["total"]}"])'

    task = Task("task3_1", 3, "Record it.", "", eval_MRN=patient)
    task_set = TaskSet(
        "isolation",
        (task,),
        "{context} {question} {api_base} {functions}",
        json.loads((Path(__file__).parents[1] / "medbench/data/functions_generated.json").read_text()),
        "generated",
    )
    served, _ = serve_agent(post_then_search)
    with served:
        settings = Settings(post_mode="execute", repeats=2, results_dir=tmp_path, agent_url=served.url, protocol="a2a")
        with A2AAgent(served.url, timeout=WAIT_S) as agent:
            runner = AttemptRunner(
                session="a2a-isolation",
                settings=settings,
                task_set=task_set,
                environment=environment,
                model=agent,
                folder=RunFolder(tmp_path),
            )
            pool = AttemptPool(runner, concurrency=2)
            cases = [Case("task3_1", 3, 0, attempt, 2) for attempt in (1, 2)]
            pool.submit(cases)
            results = [pool.result(case) for case in cases]
            pool.stop()
            # Once an attempt is over its endpoint is gone; a token nobody was given never existed.
            for url in urls + [urls[0].rsplit("/", 1)[0] + "/not-a-token"]:
                assert httpx.post(f"{url}/mcp", json={}, trust_env=False).status_code == 404
    assert len(set(urls)) == 2, "each attempt gets an endpoint of its own"
    assert all(len(url.rsplit("/", 1)[1]) >= 32 for url in urls), "tokens are unguessable"
    for result in results:
        outcome = result.outcome
        assert outcome is not None and outcome.status == "completed", outcome
        assert json.loads(outcome.result or "[]") == ["1"], "each attempt finds exactly its own write"
        calls = [m["tool_calls"][0]["function"]["name"] for m in outcome.messages if m.get("tool_calls")]
        assert calls == ["create_resource", "search_observations_by_code"], "its call log holds its own calls only"
        assert urls[0] not in json.dumps(outcome.messages) and urls[1] not in json.dumps(outcome.messages)
