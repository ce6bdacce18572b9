"""The agent loop, run against a scripted model and a real local HTTP server standing in for FHIR."""

import json

import pytest
import vcr
from werkzeug import Request, Response

from helpers.fake_http import base_url, fhir_response, json_response, raw_target, serving
from medbench import outcomes
from medbench.agent.loop import LoopConfig, run_task
from medbench.agent.prompt import build_prompt
from medbench.agent.protocol import (
    POST_ACCEPTED,
    POST_INVALID,
    get_error_turn,
    get_ok_turn,
    post_error_turn,
)
from medbench.environment.gateway import FhirGateway
from medbench.models.client import (
    ContextLimitError,
    ModelCallError,
    ModelReply,
    OpenAIChatModel,
)
from medbench.tasks.task import Task, TaskSet

BASE = "http://localhost:8080/fhir/"
PATIENT_BODY = (
    '{\n  "resourceType": "Bundle",\n  "total": 1,\n  "link": [ {\n    "url": "http://%s/fhir/Patient"\n  } ]\n}'
)
TASK = Task(id="task1_1", category=1, instruction="What is the MRN of Zoë?", context="now is 2023-11-13")
TASK_SET = TaskSet(
    name="tiny",
    tasks=(TASK,),
    prompt_template="Use {api_base} as base.\n{functions}\nContext: {context}\nQuestion: {question}",
    functions=[{"name": "GET {api_base}/Patient"}],
)
OBSERVATION = {"resourceType": "Observation", "valueString": "118/77 mmHg"}


class FakeFhir:
    """Stand-in FHIR server: Patient searches answer a bundle, `/fhir/bad` a 400, POSTs of Patient are refused."""

    seen: list = []

    @classmethod
    def answer(cls, request: Request) -> Response:
        if request.method == "GET":
            cls.seen.append(("GET", raw_target(request)))
            if request.path.startswith("/fhir/bad"):
                return fhir_response(b"{}", 400)
            return fhir_response(PATIENT_BODY % request.host)
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


class ScriptedModel:
    """Answers from a list; an exception in the list is raised instead. Records what it was sent."""

    def __init__(self, *steps, retries=0, usage=True):
        self.steps = list(steps)
        self.received = []
        self.retries = retries
        self.usage = usage

    def complete(self, messages):
        self.received.append([dict(m) for m in messages])
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        tokens = (100, 5) if self.usage else (None, None)
        return ModelReply(
            content=step, prompt_tokens=tokens[0], completion_tokens=tokens[1], latency_s=0.5, retries=self.retries
        )


class ExplodingGateway:
    def get(self, url):
        raise RuntimeError("gateway broke")


def run(model, gateway, **config):
    return run_task(TASK, TASK_SET, model, gateway, LoopConfig(**config))


def agent_turns(outcome):
    return [t["content"] for t in outcome.history if t["role"] == "agent"]


# --- completed and the user turns ------------------------------------------------------------


def test_get_then_finish_completes_with_raw_result_and_full_transcript(gateway):
    model = ScriptedModel(f"GET {BASE}Patient?name=Zoë", 'FINISH(["S1"])')
    outcome = run(model, gateway)
    body = PATIENT_BODY % "localhost:8080"
    assert (outcome.status, outcome.result, outcome.error) == (outcomes.COMPLETED, '["S1"]', None)
    assert outcome.history == [
        {"role": "user", "content": build_prompt(TASK_SET, TASK, BASE)},
        {"role": "agent", "content": f"GET {BASE}Patient?name=Zoë"},
        {"role": "user", "content": get_ok_turn(body)},
        {"role": "agent", "content": 'FINISH(["S1"])'},
    ]
    assert FakeFhir.seen == [("GET", "/fhir/Patient?name=Zo%C3%AB&_format=json")]


def test_whole_transcript_is_sent_every_round_with_agent_turns_as_assistant(gateway):
    model = ScriptedModel(f"GET {BASE}Patient", "FINISH([])")
    run(model, gateway)
    first, second = model.received
    assert first == [{"role": "user", "content": build_prompt(TASK_SET, TASK, BASE)}]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == f"GET {BASE}Patient"


def test_failed_get_gives_upstream_error_turn_with_display_url(gateway):
    outcome = run(ScriptedModel(f"GET {BASE}bad?date=a,b", "FINISH([-1])"), gateway)
    assert outcome.history[2]["content"] == get_error_turn(
        "400 Client Error:  for url: http://localhost:8080/fhir/bad?date=a,b&_format=json"
    )
    assert outcome.status == outcomes.COMPLETED


def test_official_post_is_acknowledged_but_never_sent(gateway):
    outcome = run(ScriptedModel(f"POST {BASE}Observation\n{json.dumps(OBSERVATION)}", "FINISH([])"), gateway)
    assert outcome.history[2]["content"] == POST_ACCEPTED
    assert FakeFhir.seen == []


def test_post_with_unparsable_payload_gives_invalid_post_turn_and_continues(gateway):
    outcome = run(ScriptedModel(f"POST {BASE}Observation\n{{not json}}", "FINISH([])"), gateway)
    assert outcome.history[2]["content"] == POST_INVALID
    assert outcome.status == outcomes.COMPLETED


def test_fenced_post_is_accepted_but_transcript_keeps_the_raw_fenced_answer(gateway):
    raw = f"```\nPOST {BASE}Observation\n{json.dumps(OBSERVATION)}\n```"
    outcome = run(ScriptedModel(raw, "FINISH([])"), gateway)
    assert outcome.history[1]["content"] == raw
    assert outcome.history[2]["content"] == POST_ACCEPTED


def test_execute_mode_sends_the_post_and_acknowledges_success(gateway):
    outcome = run(
        ScriptedModel(f"POST {BASE}Observation\n{json.dumps(OBSERVATION)}", "FINISH([])"), gateway, post_mode="execute"
    )
    assert FakeFhir.seen == [("POST", "/fhir/Observation", OBSERVATION)]
    assert outcome.history[2]["content"] == POST_ACCEPTED


def test_execute_mode_turns_a_refused_post_into_an_error_turn(gateway):
    refused = {"resourceType": "Patient"}
    outcome = run(
        ScriptedModel(f"POST {BASE}Observation\n{json.dumps(refused)}", "FINISH([])"), gateway, post_mode="execute"
    )
    assert outcome.history[2]["content"] == post_error_turn(
        "400 Client Error:  for url: http://localhost:8080/fhir/Observation"
    )


def test_execute_mode_does_not_send_an_invalid_post(gateway):
    outcome = run(ScriptedModel(f"POST {BASE}Observation\nnope", "FINISH([])"), gateway, post_mode="execute")
    assert FakeFhir.seen == [] and outcome.history[2]["content"] == POST_INVALID


# --- other statuses --------------------------------------------------------------------------


def test_answer_with_prose_ends_the_task_as_invalid_action(gateway):
    outcome = run(ScriptedModel("I think the MRN is S1."), gateway)
    assert outcome.status == outcomes.INVALID_ACTION
    assert outcome.result is None
    assert agent_turns(outcome) == ["I think the MRN is S1."]
    assert "does not start with GET, POST or FINISH(" in outcome.error


def test_empty_answer_is_recorded_as_an_empty_turn_and_is_invalid(gateway):
    outcome = run(ScriptedModel(""), gateway)
    assert outcome.status == outcomes.INVALID_ACTION
    assert outcome.history[-1] == {"role": "agent", "content": ""}
    assert outcome.num_turns == 1


def test_running_out_of_rounds_is_limit_reached_after_exactly_max_rounds_calls(gateway):
    model = ScriptedModel(*[f"GET {BASE}Patient"] * 8)
    outcome = run(model, gateway)
    assert outcome.status == outcomes.LIMIT_REACHED
    assert (outcome.model_calls, outcome.num_turns, len(outcome.history)) == (8, 8, 17)
    assert outcome.history[-1]["role"] == "user"


def test_max_rounds_is_configurable(gateway):
    outcome = run(ScriptedModel(*[f"GET {BASE}Patient"] * 3), gateway, max_rounds=3)
    assert outcome.status == outcomes.LIMIT_REACHED and outcome.model_calls == 3


def test_context_overflow_is_context_limit_with_transcript_so_far(gateway):
    model = ScriptedModel(f"GET {BASE}Patient", ContextLimitError("maximum context length is 8192 tokens"))
    outcome = run(model, gateway)
    assert outcome.status == outcomes.CONTEXT_LIMIT
    assert len(outcome.history) == 3 and "maximum context length" in outcome.error


def test_model_failure_after_retries_is_error_and_its_retries_count(gateway):
    model = ScriptedModel(f"GET {BASE}Patient", ModelCallError("HTTP 503: busy", retries=6, latency_s=2.0), retries=1)
    outcome = run(model, gateway)
    assert outcome.status == outcomes.ERROR and "HTTP 503: busy" in outcome.error
    assert outcome.retries == 7 and outcome.model_calls == 2
    assert outcome.calls[-1] == {
        "ok": False,
        "latency_s": 2.0,
        "lost_s": 2.0,
        "prompt_tokens": None,
        "completion_tokens": None,
        "retries": 6,
        "timeouts": 0,
        "finish_reason": None,
    }


def test_unexpected_exception_in_model_is_error_not_raised(gateway):
    outcome = run(ScriptedModel(KeyError("choices")), gateway)
    assert outcome.status == outcomes.ERROR and outcome.error == "KeyError: 'choices'"
    assert len(outcome.history) == 1


def test_unexpected_exception_in_gateway_is_error_not_raised():
    outcome = run(ScriptedModel(f"GET {BASE}Patient"), ExplodingGateway())
    assert outcome.status == outcomes.ERROR and "gateway broke" in outcome.error
    assert outcome.history[-1]["role"] == "agent"


def test_broken_prompt_template_is_error_not_raised(gateway):
    broken = TaskSet(name="broken", tasks=(TASK,), prompt_template="{unknown}", functions=[])
    outcome = run_task(TASK, broken, ScriptedModel(), gateway, LoopConfig())
    assert outcome.status == outcomes.ERROR and outcome.history == []


def test_replay_cassette_mismatch_through_the_real_client_has_its_own_status(gateway, tmp_path):
    """vcrpy raises inside the SDK's transport; the SDK does not wrap it and the client does not retry it."""
    model = OpenAIChatModel("m", "http://127.0.0.1:9/v1", max_retries=3)
    with vcr.VCR(record_mode="none").use_cassette(str(tmp_path / "empty.yaml")):
        outcome = run(model, gateway)
    assert outcome.status == outcomes.CASSETTE_MISMATCH
    assert outcome.model_calls == 1 and outcome.retries == 0
    assert "/v1/chat/completions" in outcome.error


# --- think stripping -------------------------------------------------------------------------


def test_strip_think_on_removes_reasoning_before_parsing_and_recording(gateway):
    outcome = run(ScriptedModel('<think>the MRN is S1</think>\nFINISH(["S1"])'), gateway, strip_think=True)
    assert outcome.status == outcomes.COMPLETED and outcome.result == '["S1"]'
    assert agent_turns(outcome) == ['FINISH(["S1"])']


def test_think_text_is_an_invalid_action_when_strip_think_is_off(gateway):
    outcome = run(ScriptedModel('<think>the MRN is S1</think>\nFINISH(["S1"])'), gateway)
    assert outcome.status == outcomes.INVALID_ACTION


# --- accounting ------------------------------------------------------------------------------


def test_tokens_latency_and_retries_are_totalled_per_task(gateway):
    outcome = run(ScriptedModel(f"GET {BASE}Patient", "FINISH([])", retries=2), gateway)
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (200, 10)
    assert (outcome.model_calls, outcome.retries, outcome.model_latency_s) == (2, 4, 1.0)
    assert outcome.calls[0] == {
        "ok": True,
        "latency_s": 0.5,
        "lost_s": 0.0,
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "retries": 2,
        "timeouts": 0,
        "finish_reason": None,
    }


class RepliesModel:
    """Returns the given ModelReply objects (or raises the given errors) in order."""

    def __init__(self, *steps):
        self.steps = list(steps)

    def complete(self, messages):
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


def reply(content, *, latency_s=0.5, lost_s=0.0, retries=0, timeouts=0, finish_reason="stop"):
    return ModelReply(
        content=content,
        prompt_tokens=100,
        completion_tokens=5,
        latency_s=latency_s,
        retries=retries,
        finish_reason=finish_reason,
        lost_s=lost_s,
        timeouts=timeouts,
    )


def test_time_lost_to_retries_and_timeouts_counts_in_latency_and_on_its_own(gateway):
    model = RepliesModel(reply(f"GET {BASE}Patient", lost_s=30.0, retries=2, timeouts=1), reply("FINISH([])"))
    outcome = run(model, gateway)
    assert outcome.model_latency_s == 31.0 and outcome.time_lost_s == 30.0
    assert (outcome.retries, outcome.timeouts) == (2, 1)
    assert outcome.calls[0]["latency_s"] == 30.5 and outcome.calls[0]["lost_s"] == 30.0


def test_a_call_that_gave_up_loses_all_its_time_and_keeps_its_timeouts(gateway):
    model = RepliesModel(reply(f"GET {BASE}Patient"), ModelCallError("timed out", retries=1, latency_s=9.0, timeouts=2))
    outcome = run(model, gateway)
    assert outcome.status == outcomes.ERROR
    assert (outcome.time_lost_s, outcome.timeouts, outcome.retries) == (9.0, 2, 1)


def test_finish_reason_is_recorded_per_call_and_the_last_answer_decides_truncation(gateway):
    model = RepliesModel(
        reply(f"GET {BASE}Patient", finish_reason="length"),
        reply("The patient's latest magnesium is", finish_reason="length"),
    )
    outcome = run(model, gateway)
    assert [call["finish_reason"] for call in outcome.calls] == ["length", "length"]
    assert outcome.status == outcomes.INVALID_ACTION, "a cut answer keeps the status upstream gives it"
    assert outcome.last_answer_truncated and outcome.truncated_answers == 2


def test_an_answer_cut_earlier_does_not_mark_a_finished_attempt_truncated(gateway):
    model = RepliesModel(reply(f"GET {BASE}Patient", finish_reason="length"), reply("FINISH([])"))
    outcome = run(model, gateway)
    assert outcome.status == outcomes.COMPLETED
    assert not outcome.last_answer_truncated and outcome.truncated_answers == 1


def test_context_limit_call_records_the_token_counts_the_error_reported(gateway):
    overflow = ContextLimitError(
        "HTTP 400: request (9000 tokens) exceeds the available context size (8192 tokens)",
        prompt_tokens=9000,
        context_window=8192,
    )
    outcome = run(RepliesModel(reply(f"GET {BASE}Patient"), overflow), gateway)
    assert outcome.status == outcomes.CONTEXT_LIMIT
    assert outcome.calls[-1]["prompt_tokens"] == 9000 and outcome.calls[-1]["context_window"] == 8192
    assert outcome.prompt_tokens == 100 + 9000, "the attempt's tokens include the prompt that no longer fit"


def test_tokens_are_none_when_the_endpoint_never_reports_usage(gateway):
    outcome = run(ScriptedModel("FINISH([])", usage=False), gateway)
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (None, None)


def test_prompt_shows_the_configured_display_base(gateway):
    model = ScriptedModel("FINISH([])")
    run(model, gateway, api_base="http://fhir.example.org/r4/")
    assert model.received[0][0]["content"].startswith("Use http://fhir.example.org/r4/ as base.")


def test_unknown_post_mode_is_rejected_when_configuring():
    with pytest.raises(ValueError, match="post_mode"):
        LoopConfig(post_mode="send")


# --- the loop with the real client -----------------------------------------------------------


def overflow(request: Request) -> Response:
    """A chat endpoint whose every answer is the context-length error."""
    return json_response({"error": {"message": "prompt is too long", "code": "context_length_exceeded"}}, 400)


def test_real_client_context_overflow_becomes_context_limit_status(gateway):
    with serving(overflow) as server:
        outcome = run(OpenAIChatModel("m", base_url(server, "v1"), max_retries=0), gateway)
    assert outcome.status == outcomes.CONTEXT_LIMIT and outcome.model_calls == 1


# --- hostile replies: off-base urls, invalid Unicode, deep nesting ------------------------------


def test_get_off_the_fhir_base_is_refused_counted_and_answered_in_upstreams_words(gateway):
    model = ScriptedModel("GET http://127.0.0.1:9/leak", "GET http://localhost:8080@127.0.0.1:9/fhir/x", "FINISH([])")
    outcome = run(model, gateway)
    assert outcome.status == outcomes.COMPLETED and outcome.refused_requests == 2
    turn = outcome.history[2]["content"]
    assert turn == get_error_turn(
        "Refused: http://127.0.0.1:9/leak&_format=json is not under the FHIR base URL "
        "(its host is '127.0.0.1:9', not 'localhost:8080'); only that server can be queried"
    )
    assert FakeFhir.seen == []


def test_execute_post_off_the_fhir_base_is_refused_and_counted(gateway):
    model = ScriptedModel("POST http://127.0.0.1:9/fhir/Observation\n" + json.dumps(OBSERVATION), "FINISH([])")
    outcome = run(model, gateway, post_mode="execute")
    assert outcome.refused_requests == 1 and FakeFhir.seen == []
    assert outcome.history[2]["content"].startswith(post_error_turn("Refused: http://127.0.0.1:9/fhir/Observation"))


def test_gets_under_the_base_are_not_counted_as_refused(gateway):
    outcome = run(ScriptedModel(f"GET {BASE}Patient", f"GET {BASE}bad", "FINISH([])"), gateway)
    assert outcome.refused_requests == 0 and len(FakeFhir.seen) == 2


def test_lone_surrogate_in_a_get_url_is_sent_as_requests_quotes_it_and_the_conversation_goes_on(gateway):
    model = ScriptedModel(f"GET {BASE}Patient?name=\ud800", "FINISH([])")
    outcome = run(model, gateway)
    assert outcome.status == outcomes.COMPLETED
    assert FakeFhir.seen == [("GET", "/fhir/Patient?name=%ED%A0%80&_format=json")]
    assert outcome.history[1]["content"] == f"GET {BASE}Patient?name=\ud800"  # graders see the raw answer
    sent = model.received[1][1]["content"]
    assert sent == f"GET {BASE}Patient?name=\ufffd"  # the endpoint gets valid UTF-8
    sent.encode("utf-8")


def test_lone_surrogate_in_an_executed_post_body_is_a_failed_post_not_an_error(gateway):
    payload = '{"resourceType": "Observation", "valueString": "\\ud800"}'
    outcome = run(ScriptedModel(f"POST {BASE}Observation\n{payload}", "FINISH([])"), gateway, post_mode="execute")
    assert outcome.status == outcomes.COMPLETED and FakeFhir.seen == []
    assert outcome.history[2]["content"].startswith(post_error_turn("UnicodeEncodeError: "))


def test_finish_with_lists_nested_5000_deep_completes(gateway):
    outcome = run(ScriptedModel("FINISH(" + "[" * 5000 + "]" * 5000 + ")"), gateway)
    assert outcome.status == outcomes.COMPLETED and len(outcome.result) == 10_000


def test_post_nested_5000_deep_is_an_invalid_post_in_both_modes(gateway):
    deep = "POST " + BASE + "Observation\n" + '{"a":' * 5000 + "1" + "}" * 5000
    for mode in ("official", "execute"):
        outcome = run(ScriptedModel(deep, "FINISH([])"), gateway, post_mode=mode)
        assert outcome.status == outcomes.COMPLETED and outcome.history[2]["content"] == POST_INVALID


def test_errors_say_whether_the_model_call_or_the_harness_failed(gateway):
    model_failed = run(ScriptedModel(f"GET {BASE}Patient", ModelCallError("HTTP 503: busy")), gateway)
    harness_failed = run(ScriptedModel(f"GET {BASE}Patient"), ExplodingGateway())
    assert (model_failed.status, model_failed.error_source) == (outcomes.ERROR, "model")
    assert (harness_failed.status, harness_failed.error_source) == (outcomes.ERROR, "harness")
    assert run(ScriptedModel("FINISH([])"), gateway).error_source is None


def test_a_harness_crash_after_a_correct_post_is_graded_as_upstream_grades_task_errors():
    from helpers.grading_fakes import FakeGateway, bp_payload, make_task
    from medbench.grading import Verdict, grade

    task = make_task(3)
    model = ScriptedModel(f"POST {BASE}Observation\n{json.dumps(bp_payload())}", f"GET {BASE}Patient")
    outcome = run_task(task, TASK_SET, model, ExplodingGateway(), LoopConfig())
    assert (outcome.status, outcome.error_source, outcome.result) == (outcomes.ERROR, "harness", None)
    assert grade(task, outcome, FakeGateway(), BASE, mode="official") == Verdict(True)
    assert grade(task, outcome, FakeGateway(), BASE, mode="corrected") == Verdict(False, "error")
