"""The tools-mode loop against a scripted tool-calling model and a real local HTTP server standing in for FHIR."""

from __future__ import annotations

import json

import pytest
from werkzeug import Request, Response

from helpers.fake_http import base_url, fhir_response, raw_target, serving
from medbench import outcomes
from medbench.agent.loop import LoopConfig
from medbench.agent.protocol import POST_ACCEPTED, POST_INVALID, get_error_turn, get_ok_turn, post_error_turn
from medbench.agent.tools import reply_text, tools_for, tools_prompt
from medbench.agent.tools_loop import run_tools_task
from medbench.environment.gateway import FhirGateway
from medbench.grading import grade
from medbench.grading.transcript import corrected_accepted_posts, mentions_post, official_accepted_posts
from medbench.models.client import ContextLimitError
from medbench.models.tool_reply import ToolCall, ToolReply
from medbench.tasks.generated import generated_presentation
from medbench.tasks.task import Task, TaskSet

BASE = "http://localhost:8080/fhir/"
BUNDLE = '{\n  "resourceType": "Bundle",\n  "total": 1,\n  "entry": [ ]\n}'
TASK = Task(
    id="task3_1",
    category=3,
    instruction='Record the blood pressure "118/77 mmHg" for patient S1.',
    context="It is 2023-11-13T10:15:00+00:00 now.",
    eval_MRN="S1",
    sol=["118/77 mmHg"],
)
TASK_SET = TaskSet(
    name="tiny", tasks=(TASK,), prompt_template="unused in tools mode", functions=generated_presentation().functions
)
BP = {
    "resourceType": "Observation",
    "category": [
        {
            "coding": [
                {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
            ]
        }
    ],
    "code": {"text": "BP"},
    "effectiveDateTime": "2023-11-13T10:15:00+00:00",
    "status": "final",
    "valueString": "118/77 mmHg",
    "subject": {"reference": "Patient/S1"},
}


class FakeFhir:
    """Stand-in FHIR server: searches answer a bundle, `Condition` a 400, POSTs of Patient are refused."""

    seen: list = []

    @classmethod
    def answer(cls, request: Request) -> Response:
        if request.method == "GET":
            cls.seen.append(("GET", raw_target(request)))
            if request.path.startswith("/fhir/Condition"):
                return fhir_response(b"{}", 400)
            return fhir_response(BUNDLE)
        body = json.loads(request.get_data())
        cls.seen.append(("POST", raw_target(request), body))
        return fhir_response(json.dumps(body), 400 if body.get("resourceType") == "Patient" else 201)


@pytest.fixture(scope="module")
def fhir_base():
    with serving(FakeFhir.answer) as server:
        yield base_url(server, "fhir/")


@pytest.fixture
def gateway(fhir_base):
    FakeFhir.seen = []
    with FhirGateway(fhir_base) as gw:
        yield gw


def call(name: str, arguments, call_id: str | None = None) -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=call_id or f"id-{name}", name=name, arguments=text)


class ScriptedToolModel:
    """Answers each turn from a list: a list of ToolCalls, a text reply (str) or an exception to raise."""

    def __init__(self, *steps, usage=(100, 5)):
        self.steps = list(steps)
        self.received: list[list[dict]] = []
        self.tools: list[list[dict]] = []
        self.usage = usage

    def complete_with_tools(self, messages, tools):
        self.received.append(json.loads(json.dumps(messages)))
        self.tools.append(tools)
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        content, calls = (step, ()) if isinstance(step, str) else ("", tuple(step))
        return ToolReply(
            content=content,
            tool_calls=calls,
            prompt_tokens=self.usage[0],
            completion_tokens=self.usage[1],
            latency_s=0.25,
            retries=0,
        )


def run(model, gateway, **config):
    return run_tools_task(TASK, TASK_SET, model, gateway, LoopConfig(**config))


def tool_messages(outcome):
    return [m for m in outcome.messages if m["role"] == "tool"]


FINISH = [call("finish", {"answers": []})]


# --- the conversation ------------------------------------------------------------------------


def test_the_request_carries_the_task_sets_tools_and_opens_with_the_tools_prompt(gateway):
    model = ScriptedToolModel(FINISH)
    outcome = run(model, gateway)
    assert model.tools[0] == tools_for(TASK_SET).specs()
    assert model.received[0] == [{"role": "user", "content": tools_prompt(TASK, BASE)}]
    assert (outcome.status, outcome.result, outcome.num_turns) == (outcomes.COMPLETED, "[]", 1)


def test_a_search_result_comes_back_as_a_tool_message_holding_the_body_as_sent(gateway):
    model = ScriptedToolModel([call("search_patients", {"identifier": "S1"}, "c1")], FINISH)
    outcome = run(model, gateway)
    assert FakeFhir.seen == [("GET", "/fhir/Patient?identifier=S1&_format=json")]
    assert model.received[1][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "search_patients", "arguments": '{"identifier": "S1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": BUNDLE},
    ]
    assert outcome.history[1:3] == [
        {"role": "agent", "content": f"GET {BASE}Patient?identifier=S1"},
        {"role": "user", "content": get_ok_turn(BUNDLE)},
    ]


def test_a_failed_search_is_answered_in_the_text_protocols_words(gateway):
    outcome = run(ScriptedToolModel([call("search_conditions", {"patient": "S1"})], FINISH), gateway)
    error = get_error_turn("400 Client Error:  for url: http://localhost:8080/fhir/Condition?patient=S1&_format=json")
    assert tool_messages(outcome)[0]["content"] == error
    assert outcome.tool_errors == 0, "a server error is an answer, not a malformed call"


def test_parallel_tool_calls_run_in_order_and_each_gets_its_tool_message(gateway):
    calls = [
        call("search_patients", {"identifier": "S1"}, "a"),
        call("search_observations_by_code", {"patient": "S1", "code": "MG", "_count": 5000}, "b"),
        call("get_next_page", {"url": f"{BASE}Patient?identifier=S1&page=2"}, "c"),
    ]
    outcome = run(ScriptedToolModel(calls, FINISH), gateway)
    assert FakeFhir.seen == [
        ("GET", "/fhir/Patient?identifier=S1&_format=json"),
        ("GET", "/fhir/Observation?patient=S1&code=MG&_count=5000&_format=json"),
        ("GET", "/fhir/Patient?identifier=S1&page=2"),
    ]
    assert [m["tool_call_id"] for m in tool_messages(outcome)] == ["a", "b", "c"]
    assert [t["content"] for t in outcome.history if t["role"] == "agent"][:3] == [
        f"GET {BASE}Patient?identifier=S1",
        f"GET {BASE}Observation?patient=S1&code=MG&_count=5000",
        f"GET {BASE}Patient?identifier=S1&page=2",
    ]
    assert outcome.num_turns == 2 and outcome.model_calls == 2


def test_finish_among_parallel_calls_ends_the_task_and_later_calls_do_not_run(gateway):
    calls = [
        call("search_patients", {"identifier": "S1"}),
        call("finish", {"answers": ["S1"]}),
        call("search_patients", {"identifier": "S2"}),
    ]
    outcome = run(ScriptedToolModel(calls), gateway)
    assert (outcome.status, outcome.result) == (outcomes.COMPLETED, '["S1"]')
    assert FakeFhir.seen == [("GET", "/fhir/Patient?identifier=S1&_format=json")]
    assert outcome.history[-1] == {"role": "agent", "content": 'FINISH(["S1"])'}


# --- calls the harness cannot run: an error the model can correct, counted --------------------


def test_a_call_to_an_unknown_tool_is_answered_with_the_tool_names_and_counted(gateway):
    model = ScriptedToolModel([call("fhir_get", {"url": f"{BASE}Patient"}, "x")], FINISH)
    outcome = run(model, gateway)
    assert tool_messages(outcome)[0] == {
        "role": "tool",
        "tool_call_id": "x",
        "content": reply_text("unknown_tool", name="'fhir_get'", names=", ".join(tools_for(TASK_SET).names)),
    }
    assert (outcome.status, outcome.tool_errors, FakeFhir.seen) == (outcomes.COMPLETED, 1, [])
    assert [t["role"] for t in outcome.history] == ["user", "agent"], "nothing was sent, so graders see nothing"


def test_arguments_that_are_not_json_are_answered_with_the_parse_error_and_counted(gateway):
    model = ScriptedToolModel([call("search_patients", '{"identifier": "S1"')], FINISH)
    outcome = run(model, gateway)
    content = tool_messages(outcome)[0]["content"]
    assert content.startswith("Error: the arguments of search_patients are not valid JSON (")
    assert "Call search_patients again" in content
    assert (outcome.tool_errors, FakeFhir.seen) == (1, [])


def test_arguments_that_do_not_fit_the_schema_are_answered_with_the_problem_and_the_model_can_correct(gateway):
    model = ScriptedToolModel(
        [call("search_observations_by_code", {"patient": "S1"})],
        [call("search_observations_by_code", {"patient": "S1", "code": "MG"})],
        FINISH,
    )
    outcome = run(model, gateway)
    first, second = tool_messages(outcome)
    assert first["content"] == reply_text(
        "invalid_arguments", name="search_observations_by_code", problem="'code' is a required property"
    )
    assert second["content"] == BUNDLE
    assert (outcome.status, outcome.tool_errors, outcome.num_turns) == (outcomes.COMPLETED, 1, 3)


def test_finish_with_an_answer_that_is_not_a_list_is_refused_and_the_model_can_finish_again(gateway):
    model = ScriptedToolModel([call("finish", {"answers": "S1"})], [call("finish", {"answers": ["S1"]})])
    outcome = run(model, gateway)
    assert tool_messages(outcome)[0]["content"] == reply_text(
        "invalid_arguments", name="finish", problem="answers: 'S1' is not of type 'array'"
    )
    assert (outcome.status, outcome.result, outcome.tool_errors) == (outcomes.COMPLETED, '["S1"]', 1)


def test_finish_without_answers_never_completes_if_the_model_does_not_correct_it(gateway):
    outcome = run(ScriptedToolModel(*[[call("finish", "{}")]] * 3), gateway, max_rounds=3)
    assert (outcome.status, outcome.result, outcome.tool_errors) == (outcomes.LIMIT_REACHED, None, 3)


# --- replies without a tool call --------------------------------------------------------------


def test_a_text_reply_gets_one_reminder_and_the_task_goes_on(gateway):
    model = ScriptedToolModel("The patient is S1.", [call("finish", {"answers": ["S1"]})])
    outcome = run(model, gateway)
    assert model.received[1][1:] == [
        {"role": "assistant", "content": "The patient is S1."},
        {"role": "user", "content": reply_text("reminder")},
    ]
    assert (outcome.status, outcome.reminders, outcome.result) == (outcomes.COMPLETED, 1, '["S1"]')


def test_a_second_text_reply_ends_the_task_as_invalid_action(gateway):
    outcome = run(ScriptedToolModel("Let me think.", [call("search_patients", {})], 'FINISH(["S1"])'), gateway)
    assert outcome.status == outcomes.INVALID_ACTION
    assert outcome.error == "reply without a tool call after a reminder: 'FINISH([\"S1\"])'"
    assert (outcome.reminders, outcome.num_turns, outcome.result) == (1, 3, None)


# --- POSTs: official and execute post modes ---------------------------------------------------


def test_official_post_mode_acknowledges_a_create_call_without_sending_it_and_graders_read_it(gateway):
    outcome = run(ScriptedToolModel([call("create_observation", BP)], FINISH), gateway)
    assert FakeFhir.seen == []
    assert tool_messages(outcome)[0]["content"] == reply_text("post_accepted")
    assert outcome.history[1:3] == [
        {"role": "agent", "content": f"POST {BASE}Observation\n{json.dumps(BP)}"},
        {"role": "user", "content": POST_ACCEPTED},
    ]
    for read in (official_accepted_posts, corrected_accepted_posts):
        (post,) = read(outcome.history)
        assert (post.url, post.payload) == (f"{BASE}Observation", BP)
    for mode in ("official", "corrected"):
        assert grade(TASK, outcome, gateway, BASE, mode=mode).correct


def test_execute_post_mode_sends_the_resource(gateway):
    outcome = run(ScriptedToolModel([call("create_observation", BP)], FINISH), gateway, post_mode="execute")
    assert FakeFhir.seen == [("POST", "/fhir/Observation", BP)]
    assert tool_messages(outcome)[0]["content"] == reply_text("post_accepted")
    assert grade(TASK, outcome, gateway, BASE).correct


def test_execute_post_mode_answers_a_refused_post_with_the_text_protocols_error(gateway):
    patient = {"resourceType": "Patient"}
    outcome = run(
        ScriptedToolModel([call("create_resource", {"resource_type": "Patient", "resource": patient})], FINISH),
        gateway,
        post_mode="execute",
    )
    error = post_error_turn("400 Client Error:  for url: http://localhost:8080/fhir/Patient")
    assert FakeFhir.seen == [("POST", "/fhir/Patient", patient)]
    assert tool_messages(outcome)[0]["content"] == error
    assert outcome.history[2] == {"role": "user", "content": error}
    assert official_accepted_posts(outcome.history) == []


def test_a_rejected_create_call_shows_graders_an_unaccepted_post_attempt(gateway):
    """As a text-protocol POST the harness did not accept: the official has_post counts it, no grader accepts it."""
    broken = {key: value for key, value in BP.items() if key != "subject"}
    outcome = run(ScriptedToolModel([call("create_observation", broken)], FINISH), gateway)
    assert outcome.history[1:3] == [
        {"role": "agent", "content": f"POST {BASE}Observation\n{json.dumps(broken)}"},
        {"role": "user", "content": POST_INVALID},
    ]
    assert mentions_post(outcome.history)
    assert official_accepted_posts(outcome.history) == corrected_accepted_posts(outcome.history) == []
    assert not grade(TASK, outcome, gateway, BASE).correct


def test_a_corrected_create_call_after_a_rejected_one_is_graded_correct(gateway):
    broken = {key: value for key, value in BP.items() if key != "status"}
    outcome = run(
        ScriptedToolModel([call("create_observation", broken)], [call("create_observation", BP)], FINISH), gateway
    )
    assert outcome.tool_errors == 1
    assert grade(TASK, outcome, gateway, BASE, mode="official").correct
    assert grade(TASK, outcome, gateway, BASE, mode="corrected").correct


# --- rounds, tokens, reasoning, statuses -------------------------------------------------------


def test_max_rounds_counts_model_turns_not_tool_calls(gateway):
    two = [call("search_patients", {"identifier": "S1"}), call("search_patients", {"identifier": "S2"})]
    model = ScriptedToolModel(two, two, two, FINISH)
    outcome = run(model, gateway, max_rounds=3)
    assert (outcome.status, outcome.num_turns, outcome.model_calls) == (outcomes.LIMIT_REACHED, 3, 3)
    assert len(FakeFhir.seen) == 6


def test_tokens_are_the_sums_the_endpoint_reported(gateway):
    outcome = run(ScriptedToolModel([call("search_patients", {})], FINISH, usage=(1200, 30)), gateway)
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (2400, 60)
    assert [c["tool_calls"] for c in outcome.calls] == [1, 1]


def test_strip_think_keeps_reasoning_out_of_the_conversation_and_the_graders_view(gateway):
    thought = "<think>MRN S1 is probably right</think>Looking it up."
    model = ScriptedToolModel(thought, FINISH)
    outcome = run(model, gateway, strip_think=True)
    assert model.received[1][1] == {"role": "assistant", "content": "Looking it up."}
    assert not any("think" in t["content"] for t in outcome.history)
    kept = run(ScriptedToolModel(thought, FINISH), gateway)
    assert kept.messages[1]["content"] == thought
    assert not any("think" in t["content"] for t in kept.history), "free text is never in the graders' view"


def test_a_context_limit_ends_the_task_with_its_status_and_the_transcript_so_far(gateway):
    model = ScriptedToolModel([call("search_patients", {})], ContextLimitError("context length exceeded", retries=1))
    outcome = run(model, gateway)
    assert (outcome.status, outcome.num_turns, outcome.model_calls, outcome.retries) == (
        outcomes.CONTEXT_LIMIT,
        1,
        2,
        1,
    )
    assert outcome.calls[-1]["ok"] is False
