"""How graders read a transcript: the official has_post / accepted-POST rules and the corrected ones."""

import pytest

from helpers.grading_fakes import API, FakeOutcome, post, transcript
from medbench.agent.protocol import POST_ACCEPTED, POST_INVALID
from medbench.grading.transcript import (
    Post,
    TranscriptError,
    corrected_accepted_posts,
    corrected_has_post,
    mentions_post,
    official_accepted_posts,
)


def history(*turns: tuple[str, str]) -> list[dict[str, str]]:
    out = [{"role": "user", "content": "prompt"}]
    for role, content in turns:
        out.append({"role": role, "content": content})
    return out


# --- official has_post -----------------------------------------------------------------------


def test_has_post_is_true_for_the_word_post_inside_prose():
    outcome = transcript(("I will not POST anything, just read.", "ignored"), finish='["S1"]')
    assert mentions_post(outcome.history)


def test_has_post_is_true_for_a_rejected_post():
    outcome = transcript(f"POST {API}Observation\nnot json", finish="[]")
    assert outcome.history[2]["content"] == POST_INVALID
    assert mentions_post(outcome.history)


def test_has_post_ignores_user_turns_and_lowercase_post():
    turns = history(("user", "POST request accepted"), ("agent", "I will post nothing"), ("user", "POST"))
    assert not mentions_post(turns)


def test_has_post_is_true_when_only_the_finish_turn_mentions_post():
    assert mentions_post(transcript(finish='["no POST needed"]').history)


# --- official accepted POSTs ------------------------------------------------------------------


def test_accepted_post_url_is_first_line_minus_four_chars_and_payload_the_rest():
    outcome = transcript(post("Observation", {"a": 1}))
    assert official_accepted_posts(outcome.history) == [Post(f"{API}Observation", {"a": 1}, 1)]


def test_accepted_post_url_slice_keeps_whatever_follows_the_fourth_character():
    glued = history(("agent", 'POSThttp://x/Observation\n{"a": 1}'), ("user", POST_ACCEPTED), ("agent", "FINISH([])"))
    colon = history(("agent", 'POST: http://x/Observation\n{"a": 1}'), ("user", POST_ACCEPTED), ("agent", "FINISH([])"))
    assert official_accepted_posts(glued)[0].url == "http://x/Observation"
    assert official_accepted_posts(colon)[0].url == ": http://x/Observation"


def test_post_not_followed_by_acceptance_is_not_accepted():
    turns = history(("agent", post("Observation", {"a": 1})), ("user", POST_INVALID), ("agent", "FINISH([])"))
    assert official_accepted_posts(turns) == []


def test_accepted_post_whose_payload_does_not_parse_is_skipped():
    turns = history(
        ("agent", post("Observation", {"a": 1}) + "\nDone."), ("user", POST_ACCEPTED), ("agent", "FINISH([])")
    )
    assert official_accepted_posts(turns) == []


def test_fenced_post_accepted_by_the_loop_is_skipped_by_the_official_reading():
    fenced = "```\n" + post("Observation", {"a": 1}) + "\n```"
    outcome = transcript(fenced)
    assert outcome.history[2]["content"] == POST_ACCEPTED
    assert official_accepted_posts(outcome.history) == []


def test_accepted_posts_keep_transcript_order():
    outcome = transcript(post("MedicationRequest", {"n": 1}), f"GET {API}Patient", post("ServiceRequest", {"n": 2}))
    assert [p.url for p in official_accepted_posts(outcome.history)] == [
        f"{API}MedicationRequest",
        f"{API}ServiceRequest",
    ]


def test_last_agent_turn_mentioning_post_crashes_the_official_reading():
    outcome = transcript(post("Observation", {"a": 1}), finish='["POST done"]')
    with pytest.raises(TranscriptError, match="no turn follows"):
        official_accepted_posts(outcome.history)


# --- corrected reading ------------------------------------------------------------------------


def test_corrected_has_post_ignores_prose_and_rejected_posts():
    outcome = transcript(("I will not POST anything", "ignored"), f"POST {API}Observation\nnot json", finish='["POST"]')
    assert not corrected_has_post(outcome.history)


def test_corrected_has_post_counts_an_accepted_post():
    assert corrected_has_post(transcript(post("Observation", {"a": 1})).history)


def test_corrected_reading_takes_fenced_posts_as_the_loop_did():
    outcome = transcript("```\n" + post("Observation", {"a": 1}) + "\n```", finish='["POST done"]')
    assert corrected_accepted_posts(outcome.history) == [Post(f"{API}Observation", {"a": 1}, 1)]


def test_corrected_reading_needs_the_acceptance_turn():
    outcome = FakeOutcome("completed", "[]", history(("agent", post("Observation", {"a": 1}))))
    assert corrected_accepted_posts(outcome.history) == []
