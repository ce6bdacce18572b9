"""Tools mode on the model side: `complete_with_tools` over the real openai SDK, and the built-in
models answering with `tool_calls` when the request carries `tools`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from werkzeug import Request, Response

from helpers.fake_http import base_url, json_response, serving
from medbench.agent.tools import tools_for, tools_prompt
from medbench.models import client as client_module
from medbench.models.builtin.baselines import GIVE_UP_ANSWER
from medbench.models.builtin.reference_tools import text_conversation, tool_call_for
from medbench.models.builtin.server import ReferenceServer
from medbench.models.client import ModelCallError, OpenAIChatModel
from medbench.tasks.generated import generated_presentation
from medbench.tasks.task import Task, TaskSet

BASE = "http://localhost:8080/fhir/"
TASK = Task(
    id="task4_1",
    category=4,
    context='It is 2023-11-13T10:15:00+00:00 now. The code for magnesium is "MG".',
    instruction="What's the most recent magnesium level of the patient S6315806 within last 24 hours?",
)
TASK_SET = TaskSet(name="tiny", tasks=(TASK,), prompt_template="", functions=generated_presentation().functions)
TOOLS = tools_for(TASK_SET).specs()
OPENING = [{"role": "user", "content": tools_prompt(TASK, BASE)}]
BUNDLE = {
    "resourceType": "Bundle",
    "entry": [
        {
            "resource": {
                "resourceType": "Observation",
                "effectiveDateTime": "2023-11-13T09:00:00+00:00",
                "valueQuantity": {"value": 1.7, "unit": "mg/dL"},
            }
        }
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer() as running:
        yield running


def model(server: ReferenceServer, name: str = "reference") -> OpenAIChatModel:
    return OpenAIChatModel(name, server.base_url, max_retries=0)


# --- the built-in models ----------------------------------------------------------------------


def test_reference_answers_a_request_with_tools_by_calling_the_search_tool_that_fits(server):
    reply = model(server).complete_with_tools(OPENING, TOOLS)
    (call,) = reply.tool_calls
    assert (call.id, call.name) == ("call_1_1", "search_observations_by_code")
    assert json.loads(call.arguments) == {"patient": "S6315806", "code": "MG", "_count": "5000"}
    assert (reply.content, reply.finish_reason) == ("", "tool_calls")


def test_reference_reads_tool_results_and_finishes_with_the_answer(server):
    first = model(server).complete_with_tools(OPENING, TOOLS).tool_calls[0]
    conversation = OPENING + [
        {"role": "assistant", "content": None, "tool_calls": [first.to_message()]},
        {"role": "tool", "tool_call_id": first.id, "content": json.dumps(BUNDLE, indent=2)},
    ]
    (call,) = model(server).complete_with_tools(conversation, TOOLS).tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("call_2_1", "finish", {"answers": [1.7]})


def test_the_same_request_without_tools_is_answered_in_the_text_protocol(server):
    reply = model(server).complete(OPENING)
    assert reply.content.startswith(f"GET {BASE}Observation?patient=S6315806&code=MG")


def test_do_nothing_calls_finish_with_an_empty_list_and_give_up_with_its_text(server):
    (nothing,) = model(server, "do-nothing").complete_with_tools(OPENING, TOOLS).tool_calls
    (gave_up,) = model(server, "give-up").complete_with_tools(OPENING, TOOLS).tool_calls
    assert (nothing.name, json.loads(nothing.arguments)) == ("finish", {"answers": []})
    assert (gave_up.name, json.loads(gave_up.arguments)) == ("finish", {"answers": [GIVE_UP_ANSWER]})


def test_prompt_tokens_count_the_tool_schemas_as_an_endpoint_does(server):
    with_tools = model(server).complete_with_tools(OPENING, TOOLS).prompt_tokens
    without = model(server).complete(OPENING).prompt_tokens
    assert with_tools - without == len(json.dumps(TOOLS)) // 4


def test_malformed_tools_are_a_400(server):
    response = requests.post(
        f"{server.base_url}/chat/completions",
        timeout=10,
        json={"model": "reference", "messages": OPENING, "tools": [{"name": "x"}]},
    )
    assert response.status_code == 400 and "'tools' must be a list" in response.json()["error"]["message"]


def test_a_post_action_becomes_the_create_tool_of_its_resource_else_create_resource():
    payload = {"resourceType": "ServiceRequest", "status": "active"}
    assert tool_call_for(f"POST {BASE}ServiceRequest\n{json.dumps(payload)}", TOOLS, BASE) == (
        "create_service_request",
        payload,
    )
    allergy = {"resourceType": "AllergyIntolerance"}
    assert tool_call_for(f"POST {BASE}AllergyIntolerance\n{json.dumps(allergy)}", TOOLS, BASE) == (
        "create_resource",
        {"resource_type": "AllergyIntolerance", "resource": allergy},
    )


def test_a_next_link_becomes_get_next_page_and_a_vital_signs_search_the_category_search():
    link = "http://localhost:8080/fhir?_getpages=abc&_getpagesoffset=20&_count=20&_format=json"
    assert tool_call_for(f"GET {link}", TOOLS, BASE) == ("get_next_page", {"url": link})
    assert tool_call_for(f"GET {BASE}Observation?patient=S1&category=vital-signs", TOOLS, BASE) == (
        "search_observations_by_category",
        {"patient": "S1", "category": "vital-signs"},
    )


def test_a_tools_conversation_reads_back_as_the_text_conversation_it_stands_for():
    messages = OPENING + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "search_patients", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "create_observation", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "{}"},
        {"role": "tool", "tool_call_id": "b", "content": "POST request accepted and executed successfully."},
    ]
    assert text_conversation(messages)[1:] == [
        {"role": "assistant", "content": "GET search_patients"},
        {"role": "assistant", "content": "POST create_observation"},
        {"role": "user", "content": "Here is the response from the GET request:\n{}"},
        {"role": "user", "content": "POST request accepted and executed successfully."},
    ]


# --- the client against a scripted endpoint ------------------------------------------------------


class Endpoint:
    """Answers from a script of (status, body); records the request bodies."""

    script: list = []
    seen: list = []

    @classmethod
    def answer(cls, request: Request) -> Response:
        cls.seen.append(json.loads(request.get_data()))
        status, body = cls.script.pop(0)
        return json_response(body, status)


def completion(message: dict, usage: bool = True) -> tuple[int, dict]:
    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "tool_calls"}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 900, "completion_tokens": 12, "total_tokens": 912}
    return 200, body


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    with serving(Endpoint.answer) as server:
        yield base_url(server, "v1")


@pytest.fixture
def endpoint(endpoint_url, monkeypatch):
    Endpoint.script, Endpoint.seen = [], []
    monkeypatch.setattr(client_module.time, "sleep", lambda seconds: None)
    return Endpoint


def test_complete_with_tools_sends_the_tools_and_no_tool_choice(endpoint_url, endpoint):
    endpoint.script = [
        completion(
            {
                "content": None,
                "tool_calls": [
                    {"id": "x1", "type": "function", "function": {"name": "finish", "arguments": '{"answers": []}'}}
                ],
            }
        )
    ]
    reply = OpenAIChatModel("m", endpoint_url, temperature=0.0).complete_with_tools(OPENING, TOOLS)
    assert endpoint.seen[0] == {"model": "m", "messages": OPENING, "tools": TOOLS, "temperature": 0.0}
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("x1", "finish", '{"answers": []}')]
    assert (reply.content, reply.prompt_tokens, reply.completion_tokens) == ("", 900, 12)


def test_text_beside_calls_is_kept_and_calls_without_ids_get_one(endpoint_url, endpoint):
    endpoint.script = [
        completion(
            {
                "content": "Looking up.",
                "tool_calls": [
                    {"type": "function", "function": {"name": "search_patients", "arguments": "{}"}},
                    {"type": "function", "function": {"name": "finish", "arguments": '{"answers": []}'}},
                ],
            },
            usage=False,
        )
    ]
    reply = OpenAIChatModel("m", endpoint_url).complete_with_tools(OPENING, TOOLS)
    assert reply.content == "Looking up." and [c.id for c in reply.tool_calls] == ["call_0", "call_1"]
    assert (reply.prompt_tokens, reply.completion_tokens) == (None, None)


def test_complete_with_tools_retries_a_rate_limit_and_counts_it(endpoint_url, endpoint):
    endpoint.script = [
        (429, {"error": {"message": "slow down", "type": "rate_limit", "code": None}}),
        completion({"content": "no tool this time"}),
    ]
    reply = OpenAIChatModel("m", endpoint_url, max_retries=2).complete_with_tools(OPENING, TOOLS)
    assert (reply.retries, reply.content, reply.tool_calls) == (1, "no tool this time", ())


def test_complete_with_tools_gives_up_after_its_retries(endpoint_url, endpoint):
    endpoint.script = [(503, {"error": {"message": "down"}})] * 3
    with pytest.raises(ModelCallError, match="after 2 retries") as raised:
        OpenAIChatModel("m", endpoint_url, max_retries=2).complete_with_tools(OPENING, TOOLS)
    assert raised.value.retries == 2
