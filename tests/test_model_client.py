"""OpenAIChatModel over the real openai SDK and real HTTP, against a scripted local endpoint."""

import json
import socket
import threading
import time

import pytest
from werkzeug import Request, Response

from helpers.fake_http import base_url as url_of
from helpers.fake_http import body_then_close, drop_connection, json_response, raw_target, serving
from medbench.models import call_events
from medbench.models import client as client_module
from medbench.models.client import (
    PLACEHOLDER_API_KEY,
    ContextLimitError,
    ModelCallError,
    OpenAIChatModel,
    looks_like_context_limit,
)

MESSAGES = [{"role": "user", "content": "What is the MRN?"}]
SECRET = "sk-test-SECRET-0123456789"


def completion(content="FINISH([1])", usage=True, finish_reason="stop"):
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    return (200, body, {})


def error(status, message, code=None, headers=None):
    return (status, {"error": {"message": message, "type": "invalid_request_error", "code": code}}, headers or {})


RATE_LIMIT_TPM = error(
    429,
    "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.",
    code="rate_limit_exceeded",
)


# Faults the endpoint can inject instead of an answer.
STALL = ("stall",)  # say nothing until the test ends: the client times out
DROP = ("drop",)  # close the connection without answering
TRUNCATED_BODY = ("truncate",)  # a 200 whose JSON body is cut mid-string (Content-Length matches the cut)
SHORT_BODY = ("short",)  # a 200 that closes before sending the Content-Length it announced


class Endpoint:
    """Answers chat completions from a script: (status, payload, headers) steps, ("sleep", s) to answer
    late, or one of the faults above."""

    script: list = []
    seen: list = []
    release = threading.Event()

    @classmethod
    def answer(cls, request: Request) -> Response:
        body = json.loads(request.get_data())
        headers = {key.lower(): value for key, value in request.headers.items()}
        cls.seen.append({"path": raw_target(request), "headers": headers, "body": body})
        step = cls.script.pop(0) if cls.script else completion()
        if step[0] == "sleep":
            time.sleep(step[1])
            step = completion()
        if step[0] in ("stall", "drop", "truncate", "short"):
            return cls._fault(step[0], request)
        status, payload, extra_headers = step
        if status == 401:
            payload = {"error": {"message": f"bad key {request.headers['Authorization']}"}}
        return json_response(payload, status, extra_headers)

    @classmethod
    def _fault(cls, kind: str, request: Request) -> Response:
        if kind == "stall":
            cls.release.wait()
            return drop_connection(request)
        if kind == "drop":
            return drop_connection(request)
        data = json.dumps(completion("GET http://localhost:8080/fhir/Patient?name=Smith")[1]).encode()
        cut = data[: data.index(b"Patient") + 3]
        return body_then_close(cut, announced=len(cut) if kind == "truncate" else len(data))


@pytest.fixture(scope="module")
def base_url():
    with serving(Endpoint.answer) as server:
        yield url_of(server, "v1")


@pytest.fixture
def endpoint(base_url):
    Endpoint.script = []
    Endpoint.seen = []
    Endpoint.release = threading.Event()
    yield Endpoint
    Endpoint.release.set()


@pytest.fixture
def sleeps(monkeypatch):
    """Backoff delays the client asked for, without waiting for them."""
    delays = []
    monkeypatch.setattr(client_module.time, "sleep", delays.append)
    return delays


def make(base_url, **kwargs):
    kwargs.setdefault("max_retries", 3)
    kwargs.setdefault("backoff_initial_s", 0.01)
    return OpenAIChatModel("test-model", base_url, **kwargs)


# --- requests and replies --------------------------------------------------------------------


def test_reply_carries_content_usage_and_no_retries(base_url, endpoint):
    reply = make(base_url, api_key=SECRET).complete(MESSAGES)
    assert (reply.content, reply.prompt_tokens, reply.completion_tokens, reply.retries) == ("FINISH([1])", 11, 3, 0)
    assert reply.latency_s > 0
    assert endpoint.seen[0]["path"] == "/v1/chat/completions"
    assert endpoint.seen[0]["body"] == {"model": "test-model", "messages": MESSAGES}


def test_temperature_and_max_tokens_are_sent_only_when_given(base_url, endpoint):
    make(base_url, temperature=0.0, max_tokens=256).complete(MESSAGES)
    assert endpoint.seen[0]["body"]["temperature"] == 0.0
    assert endpoint.seen[0]["body"]["max_tokens"] == 256


def test_missing_usage_gives_none_tokens_and_null_content_gives_empty_answer(base_url, endpoint):
    endpoint.script = [completion(content=None, usage=False)]
    reply = make(base_url).complete(MESSAGES)
    assert (reply.content, reply.prompt_tokens, reply.completion_tokens) == ("", None, None)


def test_extra_headers_and_explicit_key_are_sent(base_url, endpoint):
    make(base_url, api_key=SECRET, extra_headers={"X-Team": "med"}).complete(MESSAGES)
    headers = endpoint.seen[0]["headers"]
    assert headers["x-team"] == "med"
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_key_falls_back_to_openai_api_key_env(base_url, endpoint, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    make(base_url).complete(MESSAGES)
    assert endpoint.seen[0]["headers"]["authorization"] == "Bearer sk-from-env"


def test_keyless_endpoint_gets_a_placeholder_key(base_url, endpoint, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    make(base_url).complete(MESSAGES)
    assert endpoint.seen[0]["headers"]["authorization"] == f"Bearer {PLACEHOLDER_API_KEY}"


def test_endpoint_without_choices_is_a_call_error(base_url, endpoint):
    endpoint.script = [(200, {"error": "overloaded"}, {})]
    with pytest.raises(ModelCallError, match="without choices"):
        make(base_url).complete(MESSAGES)


# --- retries ---------------------------------------------------------------------------------


def test_429_then_200_is_retried_and_counted(base_url, endpoint):
    endpoint.script = [RATE_LIMIT_TPM, completion("GET x")]
    reply = make(base_url).complete(MESSAGES)
    assert (reply.content, reply.retries, len(endpoint.seen)) == ("GET x", 1, 2)


def test_tokens_per_min_429_is_never_a_context_limit(base_url, endpoint):
    endpoint.script = [RATE_LIMIT_TPM] * 3
    with pytest.raises(ModelCallError) as failure:
        make(base_url, max_retries=2).complete(MESSAGES)
    assert not isinstance(failure.value, ContextLimitError)
    assert failure.value.retries == 2 and len(endpoint.seen) == 3
    assert "HTTP 429" in str(failure.value)


def test_exhausted_quota_429_fails_at_once(base_url, endpoint):
    endpoint.script = [error(429, "You exceeded your current quota", code="insufficient_quota")]
    with pytest.raises(ModelCallError, match="current quota") as failure:
        make(base_url).complete(MESSAGES)
    assert failure.value.retries == 0 and len(endpoint.seen) == 1


def test_server_errors_are_retried_until_success(base_url, endpoint):
    endpoint.script = [error(500, "oops"), error(502, "bad gateway"), error(503, "busy")]
    assert make(base_url).complete(MESSAGES).retries == 3


def test_persistent_server_errors_give_up_after_max_retries(base_url, endpoint):
    endpoint.script = [error(500, "oops")] * 10
    with pytest.raises(ModelCallError, match="after 3 retries") as failure:
        make(base_url, max_retries=3).complete(MESSAGES)
    assert failure.value.retries == 3 and len(endpoint.seen) == 4


def test_timeouts_are_retried_then_reported(base_url, endpoint):
    endpoint.script = [("sleep", 1.0), ("sleep", 1.0)]
    with pytest.raises(ModelCallError, match="APITimeoutError") as failure:
        make(base_url, timeout=0.2, max_retries=1).complete(MESSAGES)
    assert failure.value.retries == 1


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelCallError, match="APIConnectionError") as failure:
        make(f"http://127.0.0.1:{port}/v1", max_retries=2).complete(MESSAGES)
    assert failure.value.retries == 2


def test_backoff_grows_exponentially_with_jitter_and_is_capped(base_url, endpoint, sleeps):
    endpoint.script = [error(500, "oops")] * 5
    make(base_url, max_retries=5, backoff_initial_s=1.0, backoff_max_s=4.0).complete(MESSAGES)
    assert len(sleeps) == 5
    for delay, ceiling in zip(sleeps, [1, 2, 4, 4, 4], strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_header_is_honoured_up_to_the_cap(base_url, endpoint, sleeps):
    endpoint.script = [
        error(429, "slow down", headers={"Retry-After": "7"}),
        error(429, "x", headers={"Retry-After": "999"}),
    ]
    make(base_url, backoff_initial_s=0.01, backoff_max_s=30.0).complete(MESSAGES)
    assert sleeps[0] == 7.0 and sleeps[1] == 30.0


# --- faults of a flaky endpoint: truncated bodies, drops -------------------------------------


def test_a_body_cut_mid_string_is_retried_like_a_dropped_connection(base_url, endpoint):
    endpoint.script = [TRUNCATED_BODY, completion("GET x")]
    reply = make(base_url).complete(MESSAGES)
    assert (reply.content, reply.retries, len(endpoint.seen)) == ("GET x", 1, 2)


def test_retries_made_before_a_truncated_body_still_count(base_url, endpoint):
    endpoint.script = [error(503, "busy"), TRUNCATED_BODY, completion("GET x")]
    assert make(base_url).complete(MESSAGES).retries == 2


def test_bodies_truncated_every_time_fail_after_max_retries_with_their_count(base_url, endpoint):
    endpoint.script = [TRUNCATED_BODY] * 4
    with pytest.raises(ModelCallError, match="after 2 retries: truncated or malformed response body") as failure:
        make(base_url, max_retries=2).complete(MESSAGES)
    assert failure.value.retries == 2 and len(endpoint.seen) == 3


def test_a_connection_dropped_before_the_answer_is_retried(base_url, endpoint):
    endpoint.script = [DROP, completion("GET x")]
    assert make(base_url).complete(MESSAGES).retries == 1


def test_a_body_shorter_than_its_content_length_is_retried(base_url, endpoint):
    endpoint.script = [SHORT_BODY, completion("GET x")]
    reply = make(base_url).complete(MESSAGES)
    assert (reply.content, reply.retries) == ("GET x", 1)


# --- timeouts and the retry budget -----------------------------------------------------------


def test_a_timed_out_call_is_retried_once_by_default(base_url, endpoint):
    endpoint.script = [STALL, STALL, completion()]
    with pytest.raises(ModelCallError, match="timed out 2 times; at most 1 timeout retries") as failure:
        make(base_url, timeout=0.2, max_retries=6).complete(MESSAGES)
    assert (failure.value.retries, failure.value.timeouts, len(endpoint.seen)) == (1, 2, 2)


def test_more_timeout_retries_are_made_when_asked_and_their_time_counts_as_lost(base_url, endpoint):
    endpoint.script = [STALL, STALL, completion("GET x")]
    reply = make(base_url, timeout=0.2, timeout_retries=2).complete(MESSAGES)
    assert (reply.content, reply.retries, reply.timeouts) == ("GET x", 2, 2)
    assert reply.lost_s > 0


def test_a_zero_retry_budget_means_no_retry(base_url, endpoint):
    endpoint.script = [error(503, "busy"), completion()]
    with pytest.raises(ModelCallError, match="retry budget of 0 s spent") as failure:
        make(base_url, retry_budget_s=0).complete(MESSAGES)
    assert failure.value.retries == 0 and len(endpoint.seen) == 1


def test_no_retry_starts_when_its_wait_would_overrun_the_budget(base_url, endpoint, sleeps):
    endpoint.script = [error(503, "busy"), completion()]
    with pytest.raises(ModelCallError, match="retry budget of 3 s spent"):
        make(base_url, backoff_initial_s=10.0, retry_budget_s=3.0).complete(MESSAGES)
    assert sleeps == [] and len(endpoint.seen) == 1


def test_a_retry_after_longer_than_the_budget_gives_up_at_once(base_url, endpoint, sleeps):
    endpoint.script = [error(429, "slow down", headers={"Retry-After": "100"}), completion()]
    with pytest.raises(ModelCallError, match="retry budget"):
        make(base_url, backoff_max_s=200.0, retry_budget_s=50.0).complete(MESSAGES)
    assert sleeps == []


def test_time_lost_before_the_answer_is_kept_apart_from_its_latency(base_url, endpoint, sleeps):
    endpoint.script = [error(500, "oops"), completion()]
    reply = make(base_url).complete(MESSAGES)
    assert reply.retries == 1 and reply.lost_s > 0 and reply.latency_s > 0


def test_negative_limits_are_refused():
    for bad in ({"timeout": 0}, {"retry_budget_s": -1}, {"timeout_retries": -1}):
        with pytest.raises(ValueError):
            OpenAIChatModel("m", "http://127.0.0.1:9/v1", **bad)


# --- retries and timeouts are reported -------------------------------------------------------


def test_each_retry_is_reported_with_task_attempt_and_reason(base_url, endpoint, sleeps, caplog):
    endpoint.script = [error(503, "busy"), error(502, "bad gateway"), completion()]
    events = []
    with call_events.for_task("task5_3"), call_events.listening(events.append):
        make(base_url).complete(MESSAGES)
    assert [(e.kind, e.attempt, e.task, e.timed_out) for e in events] == [
        ("retry", 1, "task5_3", False),
        ("retry", 2, "task5_3", False),
    ]
    assert events[0].line().startswith("task5_3: model call attempt 1 failed (HTTP 503: ")
    assert "retrying in" in events[0].line()
    assert [r.getMessage() for r in caplog.records if r.name == "medbench.models"] == [e.line() for e in events]


def test_a_timeout_and_the_give_up_are_reported(base_url, endpoint):
    endpoint.script = [STALL, STALL]
    events = []
    with call_events.listening(events.append), pytest.raises(ModelCallError):
        make(base_url, timeout=0.2).complete(MESSAGES)
    assert [(e.kind, e.attempt, e.timed_out) for e in events] == [("retry", 1, True), ("gave_up", 2, True)]
    assert "attempt 2 timed out (APITimeoutError: no answer within 0.2 s); giving up after" in events[1].line()


def test_errors_that_are_not_retried_report_nothing(base_url, endpoint):
    endpoint.script = [error(404, "no such model", code="model_not_found")]
    events = []
    with call_events.listening(events.append), pytest.raises(ModelCallError):
        make(base_url).complete(MESSAGES)
    assert events == []


def test_finish_reason_comes_back_with_the_answer(base_url, endpoint):
    endpoint.script = [completion("GET http://loc", finish_reason="length")]
    assert make(base_url).complete(MESSAGES).finish_reason == "length"


# --- context limit and other refusals --------------------------------------------------------


def test_context_length_exceeded_code_is_a_context_limit_without_retry(base_url, endpoint):
    endpoint.script = [error(400, "Input is too large.", code="context_length_exceeded")]
    with pytest.raises(ContextLimitError):
        make(base_url).complete(MESSAGES)
    assert len(endpoint.seen) == 1


def test_context_words_in_a_400_without_code_are_a_context_limit(base_url, endpoint):
    endpoint.script = [error(400, "This model's maximum context length is 4096 tokens. However, you requested 5000.")]
    with pytest.raises(ContextLimitError, match="maximum context length"):
        make(base_url).complete(MESSAGES)


def test_a_context_limit_keeps_the_token_counts_a_llama_cpp_body_reports(base_url, endpoint):
    body = {
        "error": {
            "code": 400,
            "message": "request (4476 tokens) exceeds the available context size (4096 tokens)",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 4476,
            "n_ctx": 4096,
        }
    }
    endpoint.script = [(400, body, {})]
    with pytest.raises(ContextLimitError) as failure:
        make(base_url).complete(MESSAGES)
    assert (failure.value.prompt_tokens, failure.value.context_window) == (4476, 4096)


def test_a_context_limit_keeps_the_token_counts_a_vllm_message_reports(base_url, endpoint):
    endpoint.script = [
        error(
            400,
            "This model's maximum context length is 4096 tokens. However, you requested 5000 "
            "tokens (4000 in the messages, 1000 in the completion). Please reduce the length.",
        )
    ]
    with pytest.raises(ContextLimitError) as failure:
        make(base_url).complete(MESSAGES)
    assert (failure.value.prompt_tokens, failure.value.context_window) == (4000, 4096)


def test_other_client_errors_fail_at_once(base_url, endpoint):
    endpoint.script = [error(404, "The model `nope` does not exist", code="model_not_found")]
    with pytest.raises(ModelCallError, match="HTTP 404") as failure:
        make(base_url).complete(MESSAGES)
    assert not isinstance(failure.value, ContextLimitError)
    assert failure.value.retries == 0 and len(endpoint.seen) == 1


def test_api_key_never_appears_in_errors_or_repr(base_url, endpoint):
    endpoint.script = [(401, {}, {})]
    model = make(base_url, api_key=SECRET)
    with pytest.raises(ModelCallError) as failure:
        model.complete(MESSAGES)
    assert "bad key ***" in str(failure.value)  # the whole echoed header value is masked
    assert SECRET not in str(failure.value) and SECRET not in repr(model)


# --- the upstream word rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "This model's maximum context length is 8192 tokens",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "Input tokens exceed the configured limit",
        "CONTEXT WINDOW OVERFLOW: reduce the prompt",
    ],
)
def test_word_rule_matches_context_overflow_messages(text):
    assert looks_like_context_limit(text)


@pytest.mark.parametrize("text", ["Invalid API key", "model not found", "tokens are fine", "exceeded quota"])
def test_word_rule_needs_one_word_of_each_group(text):
    assert not looks_like_context_limit(text)


def test_word_rule_alone_would_misread_a_tokens_per_min_rate_limit():
    """Why the rule is applied only to non-retryable errors (PROTOCOL.md's known upstream flaw)."""
    assert looks_like_context_limit(RATE_LIMIT_TPM[1]["error"]["message"])


# --- credentials: which Authorization header goes out, and what error texts show ---------------

EXTRA = "Basic dXNlcjpsb25nLXBhc3N3b3Jk"


def test_extra_authorization_header_wins_over_the_api_key_and_the_key_is_not_sent(base_url, endpoint):
    for name in ("Authorization", "authorization", "AUTHORIZATION"):
        endpoint.seen.clear()
        make(base_url, api_key=SECRET, extra_headers={name: EXTRA}).complete(MESSAGES)
        sent = endpoint.seen[0]["headers"]
        assert sent["authorization"] == EXTRA
        assert SECRET not in json.dumps(sent)


def test_exactly_one_authorization_header_is_sent_when_both_are_given(base_url, endpoint):
    endpoint.seen.clear()
    make(base_url, api_key=SECRET, extra_headers={"authorization": EXTRA}).complete(MESSAGES)
    assert list(endpoint.seen[0]["headers"]).count("authorization") == 1


def test_api_key_is_sent_as_bearer_without_an_authorization_extra_header(base_url, endpoint):
    endpoint.seen.clear()
    model = make(base_url, api_key=SECRET, extra_headers={"X-Team": "team-blue-7"})
    model.complete(MESSAGES)
    assert endpoint.seen[0]["headers"]["authorization"] == f"Bearer {SECRET}" and model.key_is_sent


def test_an_echoed_extra_header_value_never_appears_in_errors(base_url, endpoint):
    endpoint.script = [(401, {}, {})]
    with pytest.raises(ModelCallError) as failure:
        make(base_url, api_key=SECRET, extra_headers={"Authorization": EXTRA}).complete(MESSAGES)
    assert "bad key ***" in str(failure.value)
    assert "dXNlcjpsb25nLXBhc3N3b3Jk" not in str(failure.value)


def test_a_short_key_is_not_scrubbed_character_by_character(base_url, endpoint):
    endpoint.script = [error(400, "request (9000 tokens) exceeds the available context size")]
    with pytest.raises(ContextLimitError) as failure:
        make(base_url, api_key="x").complete(MESSAGES)
    assert "exceeds the available context size" in str(failure.value)
