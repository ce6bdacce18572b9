"""The text protocol, read exactly as PROTOCOL.md states the upstream harness reads it."""

import json

import pytest

from medbench.agent.protocol import (
    POST_ACCEPTED,
    POST_INVALID,
    FinishAction,
    GetAction,
    InvalidAction,
    PostAction,
    get_error_turn,
    get_ok_turn,
    parse_action,
    strip_think,
)

BASE = "http://localhost:8080/fhir/"


# --- GET -------------------------------------------------------------------------------------


def test_get_appends_format_json_to_the_url():
    assert parse_action(f"GET {BASE}Patient?identifier=S1") == GetAction(f"{BASE}Patient?identifier=S1&_format=json")


def test_get_appends_format_json_even_without_question_mark():
    assert parse_action(f"GET {BASE}Patient/S1") == GetAction(f"{BASE}Patient/S1&_format=json")


def test_get_url_is_stripped_of_surrounding_whitespace():
    assert parse_action(f"  \n GET    {BASE}Patient?x=1   \n") == GetAction(f"{BASE}Patient?x=1&_format=json")


def test_get_without_space_after_verb_still_reads_the_rest_as_url():
    assert parse_action(f"GET{BASE}Patient") == GetAction(f"{BASE}Patient&_format=json")


def test_multi_line_get_keeps_every_line_in_the_url():
    answer = f"GET {BASE}Observation?patient=S1&code=MG\nI will now look at the values."
    assert parse_action(answer) == GetAction(
        f"{BASE}Observation?patient=S1&code=MG\nI will now look at the values.&_format=json"
    )


def test_get_inside_tool_code_fence_is_accepted():
    answer = f"```tool_code\nGET {BASE}Patient?name=Lisa\n```"
    assert parse_action(answer) == GetAction(f"{BASE}Patient?name=Lisa&_format=json")


def test_fences_are_removed_everywhere_not_only_at_the_ends():
    answer = f"GET {BASE}Pat```ient?x=1```"
    assert parse_action(answer) == GetAction(f"{BASE}Patient?x=1&_format=json")


def test_word_starting_with_get_is_read_as_a_get_like_upstream():
    assert parse_action("GETTING the data now") == GetAction("TING the data now&_format=json")


def test_lower_case_get_is_invalid():
    assert isinstance(parse_action(f"get {BASE}Patient"), InvalidAction)


# --- POST ------------------------------------------------------------------------------------

PAYLOAD = {"resourceType": "Observation", "valueString": "118/77 mmHg"}


def test_post_payload_is_json_of_everything_after_the_first_line():
    answer = f"POST {BASE}Observation\n{json.dumps(PAYLOAD, indent=2)}"
    assert parse_action(answer) == PostAction(f"{BASE}Observation", PAYLOAD, True)


def test_post_url_is_first_line_minus_four_characters_stripped():
    assert parse_action(f"POST   {BASE}Observation  \n{{}}") == PostAction(f"{BASE}Observation", {}, True)


def test_post_with_trailing_prose_is_invalid():
    answer = f"POST {BASE}Observation\n{json.dumps(PAYLOAD)}\nI have recorded the blood pressure."
    assert parse_action(answer) == PostAction(f"{BASE}Observation", None, False)


def test_post_without_payload_is_invalid():
    assert parse_action(f"POST {BASE}Observation") == PostAction(f"{BASE}Observation", None, False)


def test_post_with_payload_on_the_first_line_is_invalid():
    assert parse_action(f'POST {BASE}Observation {{"a": 1}}').valid is False


def test_post_in_a_json_fence_is_accepted_because_fences_are_stripped():
    answer = f"```\nPOST {BASE}Observation\n{json.dumps(PAYLOAD)}\n```"
    assert parse_action(answer) == PostAction(f"{BASE}Observation", PAYLOAD, True)


def test_post_with_json_language_tag_fence_is_invalid_because_only_backticks_are_removed():
    answer = f"POST {BASE}Observation\n```json\n{json.dumps(PAYLOAD)}\n```"
    assert parse_action(answer).valid is False


def test_post_payload_may_be_any_json_value():
    assert parse_action(f"POST {BASE}Observation\n[1, 2]") == PostAction(f"{BASE}Observation", [1, 2], True)


def test_post_with_crlf_line_ends_is_accepted():
    action = parse_action(f"POST {BASE}Observation\r\n{{}}")
    assert action == PostAction(f"{BASE}Observation", {}, True)


def test_post_with_deeply_nested_payload_is_invalid_not_a_crash():
    assert parse_action(f"POST {BASE}Observation\n" + "[" * 100_000).valid is False


# --- FINISH ----------------------------------------------------------------------------------


def test_finish_result_drops_prefix_and_last_character():
    assert parse_action('FINISH(["S6534835"])') == FinishAction('["S6534835"]')


def test_finish_with_nested_brackets_keeps_inner_parentheses():
    assert parse_action("FINISH([f(1), (2)])") == FinishAction("[f(1), (2)]")


def test_finish_without_closing_parenthesis_loses_its_last_character():
    assert parse_action("FINISH([42]") == FinishAction("[42")


def test_finish_with_trailing_prose_drops_only_the_last_character():
    assert parse_action("FINISH([1]) done.") == FinishAction("[1]) done")


def test_empty_finish_gives_empty_result():
    assert parse_action("FINISH(") == FinishAction("")


def test_finish_in_a_fence_is_accepted():
    assert parse_action("```\nFINISH([1.8])\n```") == FinishAction("[1.8]")


def test_finish_without_parenthesis_is_invalid():
    assert isinstance(parse_action("FINISH [1]"), InvalidAction)


def test_finish_keeps_unicode_verbatim():
    assert parse_action('FINISH(["Zoë Ångström — 体温"])') == FinishAction('["Zoë Ångström — 体温"]')


# --- invalid answers -------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["", "   ", "\n\t \n", "```", "```tool_code\n```"])
def test_empty_or_whitespace_or_bare_fence_answer_is_invalid(answer):
    assert parse_action(answer) == InvalidAction("empty answer")


def test_prose_before_the_action_is_invalid():
    action = parse_action(f"Sure! Here is the call:\nGET {BASE}Patient")
    assert isinstance(action, InvalidAction) and "Sure!" in action.reason


def test_think_block_before_action_is_invalid_in_official_mode():
    assert isinstance(parse_action(f"<think>hmm</think>GET {BASE}Patient"), InvalidAction)


def test_one_megabyte_of_text_is_parsed_without_trouble():
    prose = "x" * 1_000_000
    assert isinstance(parse_action(prose), InvalidAction)
    assert parse_action(f"GET {BASE}Patient?q={prose}").url.endswith(prose + "&_format=json")
    assert parse_action(f"FINISH([{prose}])").result == f"[{prose}]"
    assert parse_action(f"POST {BASE}Observation\n{prose}").valid is False


# --- think stripping -------------------------------------------------------------------------


def test_strip_think_removes_blocks_and_leading_whitespace():
    assert strip_think("<think>\nplan: look up\n</think>\n\nGET x") == "GET x"


def test_strip_think_removes_every_block():
    assert strip_think("<think>a</think>FINISH([1<think>b</think>])") == "FINISH([1])"


def test_strip_think_drops_text_before_a_dangling_close_tag():
    assert strip_think("reasoning without open tag</think>\nFINISH([])") == "FINISH([])"


def test_strip_think_leaves_answers_without_think_alone():
    assert strip_think("POST url\n{}") == "POST url\n{}"


def test_strip_think_keeps_unclosed_block_so_the_answer_stays_invalid():
    assert isinstance(parse_action(strip_think("<think>never ends")), InvalidAction)


# --- user turns ------------------------------------------------------------------------------


def test_get_ok_turn_is_upstream_wording():
    assert get_ok_turn('{"a": 1}') == (
        'Here is the response from the GET request:\n{"a": 1}. Please call FINISH if you have got answers'
        " for all the questions and finished all the requested tasks"
    )


def test_get_error_turn_is_upstream_wording():
    assert get_error_turn("400 Client Error:  for url: x") == (
        "Error in sending the GET request: 400 Client Error:  for url: x"
    )


def test_post_turns_are_upstream_wording():
    assert POST_ACCEPTED == (
        "POST request accepted and executed successfully. Please call FINISH if you have got answers"
        " for all the questions and finished all the requested tasks"
    )
    assert POST_INVALID == "Invalid POST request"
