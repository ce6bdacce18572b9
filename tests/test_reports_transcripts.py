"""Reading transcripts for the viewer and the export: which transcript an attempt has, and its turns."""

from __future__ import annotations

from pathlib import Path

from helpers.transcripts import (
    GLUCOSE_GET,
    GLUCOSE_URL,
    POST_ORDER,
    bundle,
    conversation,
    generated_task_set,
    record_attempt,
    task,
)
from medbench.agent.protocol import POST_ACCEPTED, POST_INVALID, get_error_turn, get_ok_turn, post_error_turn
from medbench.reports.transcripts import iter_attempts, lay_out_turns, observation, prompt_parts

GLUCOSE = task("task7_1", "What is the most recent glucose value of patient S1234567?")


def test_a_successful_get_shows_the_body_exactly_as_the_server_sent_it():
    body = bundle(101, 142)
    turn = observation(get_ok_turn(body))
    assert turn == {"kind": "fhir", "method": "GET", "status": "OK", "body": body}


def test_a_failed_get_shows_the_http_status_of_the_error():
    turn = observation(get_error_turn("400 Client Error:  for url: http://localhost:8080/fhir/Observation?x=1"))
    assert (turn["method"], turn["status"]) == ("GET", "400")
    assert turn["body"].startswith("Error in sending the GET request: 400 Client Error")


def test_a_get_that_never_reached_the_server_reads_as_error():
    assert observation(get_error_turn("Connection refused"))["status"] == "error"


def test_post_outcomes_read_as_accepted_invalid_or_the_servers_status():
    assert observation(POST_ACCEPTED)["status"] == "accepted"
    assert observation(POST_INVALID)["status"] == "invalid"
    assert observation(post_error_turn("422 Client Error:  for url: x"))["status"] == "422"


def test_any_other_user_turn_is_kept_as_text():
    text = "Please answer with GET, POST or FINISH"
    assert observation(text) == {"kind": "user", "text": text}


def test_turns_pair_agent_answers_with_their_model_calls_and_requests_with_their_urls():
    history = [
        {"role": "user", "content": "prompt"},
        {"role": "agent", "content": GLUCOSE_GET},
        {"role": "user", "content": get_ok_turn(bundle(5))},
        {"role": "agent", "content": POST_ORDER},
        {"role": "user", "content": POST_ACCEPTED},
        {"role": "agent", "content": "FINISH([5])"},
    ]
    calls = [
        {"ok": False, "latency_s": 9.0},
        *({"ok": True, "latency_s": n, "prompt_tokens": 100 * n, "completion_tokens": n} for n in (1, 2, 3)),
    ]
    turns = lay_out_turns(history, calls)
    assert [t["kind"] for t in turns] == ["prompt", "agent", "fhir", "agent", "fhir", "agent"]
    assert [t.get("action") for t in turns if t["kind"] == "agent"] == ["GET", "POST", "FINISH"]
    assert turns[2]["url"] == GLUCOSE_URL
    assert turns[3]["payload"].startswith('{\n  "resourceType": "MedicationRequest"')
    assert [(t["prompt_tokens"], t["latency_s"]) for t in turns if t["kind"] == "agent"] == [
        (100, 1),
        (200, 2),
        (300, 3),
    ]


def test_turns_carry_no_call_figures_when_calls_and_answers_do_not_pair():
    history = [{"role": "user", "content": "prompt"}, {"role": "agent", "content": "FINISH([])"}]
    turns = lay_out_turns(history, [{"ok": True, "latency_s": 1}, {"ok": True, "latency_s": 2}])
    assert "latency_s" not in turns[1]


def test_an_invalid_answer_says_why_it_is_not_an_action():
    turns = lay_out_turns([{"role": "user", "content": "p"}, {"role": "agent", "content": "I think 42"}])
    assert turns[1]["action"] == "invalid" and "does not start with GET" in turns[1]["why"]


def test_prompt_parts_finds_context_and_question_of_a_generated_prompt():
    history = conversation(generated_task_set([GLUCOSE]), GLUCOSE, [("FINISH([1])", None)])
    assert prompt_parts(history[0]["content"]) == (GLUCOSE.context, GLUCOSE.instruction)


def test_a_resumed_attempt_shows_the_transcript_its_runs_line_names(tmp_path: Path):
    task_set = generated_task_set([GLUCOSE])
    record_attempt(tmp_path, task_set, GLUCOSE, [("FINISH([1])", None)], correct=False, reason="first", session="s1")
    record_attempt(tmp_path, task_set, GLUCOSE, [("FINISH([142])", None)], correct=True, session="s2")
    (attempt,) = list(iter_attempts(tmp_path))
    assert attempt.run["correct"] is True
    assert attempt.history[-1]["content"] == "FINISH([142])"


def test_an_attempt_without_transcripts_file_has_no_history(tmp_path: Path):
    record_attempt(tmp_path, generated_task_set([GLUCOSE]), GLUCOSE, [("FINISH([1])", None)], correct=True)
    (tmp_path / "transcripts.jsonl").unlink()
    (attempt,) = list(iter_attempts(tmp_path))
    assert attempt.transcript is None and attempt.history == []
