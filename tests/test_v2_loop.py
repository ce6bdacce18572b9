"""The v2 tool protocol: upstream's 11 tools, the loop's answers to bad calls, and the wrapper's history."""

from __future__ import annotations

import json

from helpers.v2_ehr import API, MRN, SUBJECT, FakeEhr, procedure, v2_task
from medbench import outcomes
from medbench.agent.loop import LoopConfig
from medbench.agent.v2_loop import run_v2_task
from medbench.agent.v2_tools import TOOL_NAMES, tool_specs, user_message
from medbench.grading.v2 import grade_v2
from medbench.models.tool_reply import ToolCall, ToolReply
from medbench.tasks.task import TaskSet

CONFIG = LoopConfig(post_mode="execute", api_base=API)
SYSTEM = "our v2 system prompt"


def task_set(task):
    return TaskSet(name="tiny-v2", tasks=(task,), prompt_template=SYSTEM, functions=[])


class Scripted:
    """A tool-calling model that answers each step with the next scripted reply, and keeps what it was sent."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.sent = []

    def complete_with_tools(self, messages, tools):
        self.sent.append((json.loads(json.dumps(messages)), tools))
        calls, content = self.steps.pop(0) if self.steps else ([], "")
        tool_calls = tuple(
            ToolCall(f"call_{len(self.sent)}_{i}", name, args if isinstance(args, str) else json.dumps(args))
            for i, (name, args) in enumerate(calls)
        )
        return ToolReply(content, tool_calls, 10, 5, 0.01, 0)


def step(*calls, content=""):
    return list(calls), content


CT_ORDER = {
    "resourceType": "ServiceRequest",
    "code": {"coding": [{"system": "cpt", "code": "74177", "display": "CT"}]},
    "authoredOn": "2023-11-07T22:47:00+00:00",
    "status": "active",
    "intent": "order",
    "priority": "stat",
    "subject": SUBJECT,
    "note": {"text": "Renal mass follow-up"},
    "occurrenceDateTime": "2023-11-08T00:00:00+00:00",
}


def test_the_eleven_tools_have_upstreams_names_in_order_and_strict_schemas():
    assert TOOL_NAMES == (
        "patient_search",
        "fhir_vitals_search",
        "fhir_observation_search",
        "fhir_medication_request_search",
        "fhir_medication_request_create",
        "fhir_service_request_create",
        "fhir_vitals_create",
        "fhir_procedure_search",
        "fhir_condition_search",
        "calculator",
        "finish",
    )
    for spec in tool_specs():
        function = spec["function"]
        assert function["strict"] is True
        parameters = function["parameters"]
        assert parameters["additionalProperties"] is False
        assert set(parameters["required"]) == set(parameters["properties"])  # strict: every key required
    patient = tool_specs()[0]["function"]["parameters"]["properties"]["birthdate"]
    assert patient["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_the_opening_is_the_system_prompt_and_upstreams_user_message():
    model = Scripted(step(("finish", {"value": [-1]})))
    task = v2_task(1, "codes IMGCT0491")
    run_v2_task(task, task_set(task), model, FakeEhr(), CONFIG)
    messages, tools = model.sent[0]
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assert (
        messages[1]["content"]
        == f"<instruction>\n{task.instruction}\n</instruction>\n<context>\ncodes IMGCT0491\n</context>\n"
    )
    assert user_message("x", "") == "<instruction>\nx\n</instruction>\n"
    assert [t["function"]["name"] for t in tools] == list(TOOL_NAMES)


def test_a_search_goes_out_with_upstreams_query_and_comes_back_as_a_python_repr():
    ehr = FakeEhr().add(procedure("IMGCT0491", "2021-01-01T00:00:00+00:00"))
    search = (
        "fhir_procedure_search",
        {
            "search_params": {"code": "IMGCT0491,IMGIL0001", "date": "ge1900-01-01", "patient": MRN},
            "explanation": "prior CTs",
        },
    )
    model = Scripted(step(search), step(("finish", {"value": ["2021-01-01T00:00:00+00:00"]})))
    task = v2_task(1)
    outcome = run_v2_task(task, task_set(task), model, ehr, CONFIG)
    assert ehr.requested == [
        f"{API}Procedure?code=IMGCT0491%2CIMGIL0001&date=ge1900-01-01&patient={MRN}&_sort=-date&_count=200"
    ]
    shown = outcome.messages[3]["content"]
    assert shown.startswith("{'resourceType': 'Bundle'") and "'performedDateTime': '2021-01-01T00:00:00+00:00'" in shown
    assert outcome.history[:2] == [
        {"role": "agent", "content": f"GET {API}Procedure\n{json.dumps(search[1])}"},
        {"role": "agent", "content": "GET request accepted"},
    ]
    assert outcome.history[-1]["content"] == "finish({'value': ['2021-01-01T00:00:00+00:00']})"
    assert outcome.status == outcomes.COMPLETED and outcome.result == '["2021-01-01T00:00:00+00:00"]'


def test_a_create_is_sent_validated_and_answered_with_the_stored_resource():
    ehr = FakeEhr()
    raw = {**CT_ORDER, "reasonCode": [{"text": "not in the schema"}], "priority": "stat"}
    model = Scripted(step(("fhir_service_request_create", raw)), step(("finish", {"value": [-1]})))
    task = v2_task(1)
    outcome = run_v2_task(task, task_set(task), model, ehr, CONFIG)
    [stored] = ehr.writes()
    assert "reasonCode" not in stored  # pydantic drops unknown keys before sending, as upstream
    assert "reasonCode" in outcome.history[0]["content"]  # the wrapper history keeps the raw arguments
    assert outcome.history[1]["content"] == "POST request accepted"
    assert "'id':" in outcome.messages[3]["content"]
    assert grade_v2(task, outcome, ehr, API, "state").correct


def test_an_unknown_tool_is_answered_and_the_attempt_goes_on():
    model = Scripted(step(("fhir_patient_search", {"identifier": MRN})), step(("finish", {"value": [-1]})))
    task = v2_task(4)
    outcome = run_v2_task(task, task_set(task), model, FakeEhr(), CONFIG)
    assert outcome.messages[3]["content"] == "Unknown tool: fhir_patient_search"
    assert outcome.history[0] == {"role": "agent", "content": f"fhir_patient_search({ {'identifier': MRN}!r})"}
    assert outcome.tool_errors == 1 and outcome.status == outcomes.COMPLETED


def test_bad_arguments_are_answered_with_the_validation_problem():
    no_json = ("patient_search", "{not json")
    extra_key = (
        "fhir_condition_search",
        {"search_params": {"code": "C64.2", "patient": MRN}, "explanation": "x", "verbose": True},
    )
    missing_nullable = ("patient_search", {"identifier": MRN})  # nullable keys with no default are required
    model = Scripted(step(no_json, extra_key, missing_nullable), step(("finish", {"value": [-1]})))
    task = v2_task(5)
    outcome = run_v2_task(task, task_set(task), model, FakeEhr(), CONFIG)
    replies = [m["content"] for m in outcome.messages if m["role"] == "tool"]
    assert replies[0].startswith("Tool error: the arguments are not JSON")
    assert "verbose" in replies[1] and "Extra inputs are not permitted" in replies[1]
    assert "birthdate" in replies[2] and "Field required" in replies[2]
    assert outcome.tool_errors == 3
    # The calls with JSON arguments are in the wrapper's history (upstream logs before validating), unanswered.
    assert [h["content"].split("\n")[0] for h in outcome.history[:2]] == [f"GET {API}Condition", f"GET {API}Patient"]


def test_a_create_the_ehr_refuses_is_a_tool_error_and_an_unanswered_post():
    ehr = FakeEhr(refuse={"ServiceRequest"})
    model = Scripted(step(("fhir_service_request_create", CT_ORDER)), step(("finish", {"value": [-1]})))
    task = v2_task(1)
    outcome = run_v2_task(task, task_set(task), model, ehr, CONFIG)
    assert outcome.messages[3]["content"].startswith("Tool error: 400 Client Error")
    assert "OperationOutcome" in outcome.messages[3]["content"]
    assert outcome.history[1]["content"].startswith("finish(")  # no "POST request accepted"
    assert "exactly one accepted write" in grade_v2(task, outcome, ehr, API, "corrected").reason


def test_finish_without_a_value_is_answered_and_running_out_of_steps_ends_with_no_value():
    model = Scripted(*[step(("finish", {}))] * 8)
    task = v2_task(4)
    outcome = run_v2_task(task, task_set(task), model, FakeEhr(), CONFIG)
    assert "value" in outcome.messages[3]["content"] and "Field required" in outcome.messages[3]["content"]
    assert outcome.status == outcomes.LIMIT_REACHED and outcome.result == "[]" and outcome.num_turns == 8
    assert grade_v2(task, outcome, FakeEhr(), API, "official").correct  # upstream grades it: no catheter, silent


def test_a_reply_without_a_tool_call_ends_with_no_value():
    model = Scripted(step(content="I think nothing is needed."))
    task = v2_task(3)
    outcome = run_v2_task(task, task_set(task), model, FakeEhr(), CONFIG)
    assert outcome.status == outcomes.INVALID_ACTION and outcome.result == "[]"
    assert outcome.history == [{"role": "agent", "content": "I think nothing is needed."}]


def test_the_calculator_answers_values_and_refuses_code():
    model = Scripted(
        step(
            ("calculator", {"expression": "(72 + 80) / 2"}),
            ("calculator", {"expression": "().__class__.__base__"}),
            ("calculator", {"expression": "1/0"}),
        ),
        step(("finish", {"value": [76.0]})),
    )
    task = v2_task(3)
    outcome = run_v2_task(task, task_set(task), model, FakeEhr(), CONFIG)
    replies = [m["content"] for m in outcome.messages if m["role"] == "tool"]
    assert replies[0] == "76.0"
    assert replies[1].startswith("Tool error") and "__class__" in replies[1]
    assert replies[2] == "Tool error: ZeroDivisionError: division by zero"
    assert outcome.history[0]["content"] == "calculator({'expression': '(72 + 80) / 2'})"


def test_a_v2_task_set_reaches_xdist_workers_as_v2():
    from medbench.runner.session import task_set_from_json, task_set_to_json

    task = v2_task(2)
    v2 = TaskSet(name="v2", tasks=(task,), prompt_template=SYSTEM, functions=[], flavour="official", benchmark="v2")
    assert task_set_from_json(json.loads(json.dumps(task_set_to_json(v2)))).benchmark == "v2"
