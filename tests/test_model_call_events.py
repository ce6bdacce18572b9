"""Model-call events: the one line a retry or give-up prints, and who hears it."""

import logging

from medbench.models import call_events
from medbench.models.call_events import GAVE_UP, RETRY, CallEvent


def test_a_retry_line_names_task_attempt_reason_and_wait():
    event = CallEvent(RETRY, 2, "HTTP 503: busy", timed_out=False, elapsed_s=3.0, wait_s=1.25, task="task5_3")
    assert event.line() == "task5_3: model call attempt 2 failed (HTTP 503: busy); retrying in 1.2 s"


def test_a_give_up_line_says_the_call_timed_out_and_how_long_it_took():
    event = CallEvent(GAVE_UP, 2, "APITimeoutError: no answer within 30 s", timed_out=True, elapsed_s=61.0)
    assert event.line() == (
        "model call attempt 2 timed out (APITimeoutError: no answer within 30 s); giving up after 61.0 s"
    )


def test_long_reasons_are_shortened_to_one_line():
    event = CallEvent(RETRY, 1, "HTTP 502: <html>\n" + "x" * 500, timed_out=False, elapsed_s=0.1, wait_s=0.5)
    line = event.line()
    assert "\n" not in line and len(line) < 260 and "..." in line


def test_events_carry_the_task_they_were_emitted_for_and_reach_listeners_and_the_log(caplog):
    heard = []
    with caplog.at_level(logging.WARNING, logger="medbench.models"):
        with call_events.for_task("task1_1"), call_events.listening(heard.append):
            call_events.emit(CallEvent(RETRY, 1, "HTTP 500", timed_out=False, elapsed_s=0.1, wait_s=0.5))
        call_events.emit(CallEvent(RETRY, 1, "HTTP 500", timed_out=False, elapsed_s=0.1, wait_s=0.5))
    assert [event.task for event in heard] == ["task1_1"], "listeners hear only the events of their context"
    assert [record.getMessage() for record in caplog.records] == [
        "task1_1: model call attempt 1 failed (HTTP 500); retrying in 0.5 s",
        "model call attempt 1 failed (HTTP 500); retrying in 0.5 s",
    ]


def test_collected_keeps_the_lines_and_writes_each_at_once():
    written = []
    with call_events.collected(written.append) as lines:
        call_events.emit(CallEvent(RETRY, 1, "HTTP 500", timed_out=False, elapsed_s=0.1, wait_s=0.5))
        assert written == lines and len(lines) == 1
