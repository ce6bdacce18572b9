"""Telling a context-window overflow apart, and reading the token counts its error body reports.

The benchmark scores an overflow as its own status (`context_limit`), so it must be recognised
the way upstream does (a word rule), and the attempt should still say how long the prompt had
grown: servers put that number in the error, each in its own words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Upstream's context-limit rule: one word of each group, case-insensitive, as substrings.
CONTEXT_WORDS = ("prompt", "context", "tokens")
LIMIT_WORDS = ("limit", "exceed", "max", "long", "much", "many", "reach", "over", "up", "beyond")

_N = r"(\d[\d,]*)"
# Prompt (input) token counts, in the wordings of OpenAI, vLLM, llama.cpp, Anthropic and TGI.
_PROMPT_PATTERNS = (
    re.compile(
        rf"{_N} in the messages", re.IGNORECASE
    ),  # OpenAI / vLLM: "(9000 in the messages, 1000 in the completion)"
    re.compile(rf"your messages resulted in {_N} tokens", re.IGNORECASE),  # OpenAI
    re.compile(rf"your (?:request|prompt) has {_N} (?:input |prompt )?tokens", re.IGNORECASE),  # vLLM
    re.compile(rf"request \({_N} tokens\) exceeds", re.IGNORECASE),  # llama.cpp
    re.compile(rf"prompt is too long: {_N} tokens", re.IGNORECASE),  # Anthropic
    re.compile(rf"Given: {_N} `?inputs`? tokens", re.IGNORECASE),  # text-generation-inference
    re.compile(rf"you requested {_N} tokens", re.IGNORECASE),  # OpenAI / vLLM without a breakdown
)
# The context window itself.
_WINDOW_PATTERNS = (
    re.compile(rf"maximum context length is {_N} tokens", re.IGNORECASE),  # OpenAI / vLLM / OpenRouter
    re.compile(rf"available context size \({_N} tokens\)", re.IGNORECASE),  # llama.cpp
    re.compile(rf"tokens > {_N} maximum", re.IGNORECASE),  # Anthropic
    re.compile(rf"must be <= {_N}", re.IGNORECASE),  # text-generation-inference
)
# llama.cpp's error object carries the numbers as fields: {"n_prompt_tokens": 4476, "n_ctx": 4096}.
_PROMPT_FIELDS = ("n_prompt_tokens", "prompt_tokens")
_WINDOW_FIELDS = ("n_ctx", "context_window", "max_context_length")


@dataclass(frozen=True)
class ContextTokens:
    """What an overflow error said: the prompt's tokens and the window, each None when not stated."""

    prompt_tokens: int | None = None
    context_window: int | None = None


def looks_like_context_limit(text: str) -> bool:
    """Upstream's word rule; apply it only to non-retryable errors (it also matches 429 "tokens per min")."""
    lowered = text.lower()
    return any(w in lowered for w in CONTEXT_WORDS) and any(w in lowered for w in LIMIT_WORDS)


def context_tokens(body: str) -> ContextTokens:
    """The prompt token count and context window an overflow error body reports."""
    fields = _error_fields(body)
    prompt = _first_field(fields, _PROMPT_FIELDS) or _first_match(body, _PROMPT_PATTERNS)
    window = _first_field(fields, _WINDOW_FIELDS) or _first_match(body, _WINDOW_PATTERNS)
    return ContextTokens(prompt, window)


def _error_fields(body: str) -> dict[str, Any]:
    """The error object of a JSON error body (`{"error": {...}}` or the object itself), else {}."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data["error"]
    return data if isinstance(data, dict) else {}


def _first_field(fields: dict[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _first_match(text: str, patterns: tuple[re.Pattern[str], ...]) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return int(match.group(1).replace(",", ""))
    return None
