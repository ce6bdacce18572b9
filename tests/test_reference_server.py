"""The reference model's OpenAI-compatible endpoint, driven by the real openai SDK and raw HTTP."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests

from medbench.models.builtin.server import ReferenceServer
from medbench.serving import ServerLimits

TASK = (
    "Use http://localhost:8080/fhir/ as the api_base.\n"
    "Context: It's 2023-11-13T10:15:00+00:00 now.\n"
    "Question: What's the age of the patient with MRN of S2874099?"
)


@pytest.fixture(scope="module")
def server():
    with ReferenceServer() as running:
        yield running


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def test_base_url_is_a_loopback_v1_url(server):
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")


def test_chat_completion_through_the_openai_sdk_returns_the_agents_action(client):
    reply = client.chat.completions.create(model="reference", messages=[{"role": "user", "content": TASK}])
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "GET http://localhost:8080/fhir/Patient?identifier=S2874099"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.object == "chat.completion" and reply.model == "reference" and reply.id
    assert reply.usage is not None and reply.usage.prompt_tokens > reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_models_endpoint_lists_the_built_in_models(client):
    assert [m.id for m in client.models.list()] == [
        "reference",
        "do-nothing",
        "give-up",
        "reference-duplicate-posts",
        "reference-refused-post",
        "reference-fenced-posts",
        "reference-query-posts",
    ]


def test_do_nothing_baseline_finishes_at_once_with_an_empty_answer(client):
    reply = client.chat.completions.create(model="do-nothing", messages=[{"role": "user", "content": TASK}])
    assert reply.choices[0].message.content == "FINISH([])" and reply.model == "do-nothing"


def test_give_up_baseline_finishes_at_once_with_an_answer_that_is_not_a_list(client):
    reply = client.chat.completions.create(model="give-up", messages=[{"role": "user", "content": TASK}])
    content = reply.choices[0].message.content
    assert content.startswith("FINISH(") and content.endswith(")") and reply.model == "give-up"
    with pytest.raises(ValueError):
        json.loads(content[len("FINISH(") : -1])
    assert "POST" not in content


def test_an_unknown_model_is_a_404_naming_the_built_in_ones(client):
    with pytest.raises(openai.NotFoundError, match="do-nothing"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": TASK}])


def test_no_api_key_is_needed(server):
    response = requests.post(
        f"{server.base_url}/chat/completions",
        json={"model": "reference", "messages": [{"role": "user", "content": TASK}]},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"model": "reference"}).encode(), "'messages'"),
        (json.dumps({"messages": [{"content": "hi"}]}).encode(), "messages[0]"),
        (json.dumps({"messages": [{"role": "user", "content": TASK}], "stream": True}).encode(), "stream"),
    ],
)
def test_malformed_requests_get_400_with_an_openai_style_error(server, body, fragment):
    response = requests.post(
        f"{server.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"


def test_a_conversation_the_agent_cannot_act_on_is_a_422_naming_the_reason(client):
    with pytest.raises(openai.UnprocessableEntityError, match="task not recognised"):
        client.chat.completions.create(
            model="reference",
            messages=[
                {
                    "role": "user",
                    "content": "Use http://localhost:8080/fhir/ as the api_base.\nContext: \nQuestion: Hello",
                }
            ],
        )


def test_unknown_routes_are_404(server):
    assert requests.get(f"{server.base_url}/nothing").status_code == 404
    assert requests.post(f"{server.base_url}/completions", json={}).status_code == 404


def test_concurrent_clients_are_served():
    with ReferenceServer() as running:
        sdk = openai.OpenAI(base_url=running.base_url, api_key="x", max_retries=0)

        def ask(_: int) -> str:
            reply = sdk.chat.completions.create(model="reference", messages=[{"role": "user", "content": TASK}])
            return reply.choices[0].message.content or ""

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = set(pool.map(ask, range(8)))
    assert answers == {"GET http://localhost:8080/fhir/Patient?identifier=S2874099"}


def test_base_url_before_start_explains_how_to_start():
    with pytest.raises(RuntimeError, match="not started"):
        _ = ReferenceServer().base_url


TIGHT = ServerLimits(max_body_bytes=4096, idle_timeout_s=1, request_timeout_s=2, threads=1)


@pytest.fixture()
def tight():
    with ReferenceServer(limits=TIGHT) as running:
        yield running


def test_a_body_over_the_limit_is_413_with_an_openai_style_error(tight):
    messages = [{"role": "user", "content": "x" * 10_000}]
    response = requests.post(
        f"{tight.base_url}/chat/completions", json={"model": "reference", "messages": messages}, timeout=30
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"model": "reference", "messages": [{"role": "user", "content": 1' + b"0" * 5000 + b"}]}",
        b"\xff\xfe{}",
    ],
    ids=["nested-100k", "5000-digit-integer", "not-utf8"],
)
def test_hostile_json_is_400_not_500(server, body):
    response = requests.post(
        f"{server.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_a_lone_surrogate_in_a_message_is_answered_without_a_server_error(server):
    body = b'{"model": "reference", "messages": [{"role": "user", "content": "Question: \\ud800?"}]}'
    response = requests.post(
        f"{server.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code < 500
    response.json()


def test_a_stalled_upload_holds_no_worker_and_is_closed(tight):
    """With one worker thread, a client that never finishes its body does not block others."""
    with socket.create_connection(("127.0.0.1", int(tight.base_url.split(":")[2].split("/")[0])), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        assert requests.get(f"{tight.base_url}/models", timeout=30).status_code == 200
        assert sock.recv(1) == b""
