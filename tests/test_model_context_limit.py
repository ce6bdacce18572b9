"""Context-window overflows: the token counts each server's error wording reports."""

import json

import pytest

from medbench.models.context_limit import ContextTokens, context_tokens


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # OpenAI
        (
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. "
            "Please reduce the length of the messages.",
            ContextTokens(9000, 8192),
        ),
        (
            "This model's maximum context length is 8192 tokens. However, you requested 10000 tokens "
            "(9000 in the messages, 1000 in the completion).",
            ContextTokens(9000, 8192),
        ),
        # vLLM, old and new wordings, and the max_tokens variant
        (
            "This model's maximum context length is 1536 tokens. However, your request has 4176 input tokens. "
            "Please reduce the length of the input messages.",
            ContextTokens(4176, 1536),
        ),
        (
            "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is "
            "4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778).",
            ContextTokens(2778, 4096),
        ),
        # llama.cpp, fields in the error object and text alone
        (
            json.dumps(
                {
                    "error": {
                        "code": 400,
                        "message": "the request exceeds the available context size, try increasing it",
                        "type": "exceed_context_size_error",
                        "n_prompt_tokens": 5120,
                        "n_ctx": 4096,
                    }
                }
            ),
            ContextTokens(5120, 4096),
        ),
        ("request (4476 tokens) exceeds the available context size (4096 tokens)", ContextTokens(4476, 4096)),
        # Anthropic's OpenAI-compatible endpoint
        ("prompt is too long: 210000 tokens > 200000 maximum", ContextTokens(210000, 200000)),
        # text-generation-inference
        (
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens "
            "and 200 `max_new_tokens`",
            ContextTokens(4000, 4096),
        ),
        # thousands separators
        (
            "This model's maximum context length is 128,000 tokens. However, your messages resulted in 130,512 tokens.",
            ContextTokens(130512, 128000),
        ),
    ],
)
def test_overflow_errors_report_the_prompt_tokens_and_the_window(body, expected):
    assert context_tokens(body) == expected


def test_an_overflow_without_numbers_reports_none():
    assert context_tokens("the request exceeds the available context size, try increasing it") == ContextTokens()


def test_a_json_body_without_number_fields_falls_back_to_its_text():
    body = json.dumps(
        {
            "error": {
                "message": "This model's maximum context length is 4096 tokens. However, your request "
                "has 5000 input tokens.",
                "type": "BadRequestError",
                "code": 400,
            }
        }
    )
    assert context_tokens(body) == ContextTokens(5000, 4096)
