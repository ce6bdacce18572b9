"""The MedAgentBench text protocol (GET / POST / FINISH), read exactly as the upstream harness reads it.

Pure functions only: the agent loop decides what to do with an action, this module only says
which action a model answer is, so every upstream quirk can be pinned by a unit test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Upstream removes these substrings, in this order, wherever they occur in the answer.
FENCES = ("```tool_code", "```")
# Upstream appends this to every GET url, even one without "?".
GET_SUFFIX = "&_format=json"
FINISH_PREFIX = "FINISH("

# The user turns the upstream harness writes after each action, word for word.
GET_OK_PREFIX = "Here is the response from the GET request:\n"
CALL_FINISH_HINT = (
    "Please call FINISH if you have got answers for all the questions and finished all the requested tasks"
)
GET_ERROR_PREFIX = "Error in sending the GET request: "
POST_ACCEPTED = "POST request accepted and executed successfully. " + CALL_FINISH_HINT
POST_INVALID = "Invalid POST request"
# Execute post-mode only (no upstream counterpart): the server refused the POST.
POST_ERROR_PREFIX = "Error in sending the POST request: "

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_END = re.compile(r"</think>", re.IGNORECASE)


@dataclass(frozen=True)
class GetAction:
    url: str


@dataclass(frozen=True)
class PostAction:
    url: str
    payload: Any
    valid: bool


@dataclass(frozen=True)
class FinishAction:
    result: str


@dataclass(frozen=True)
class InvalidAction:
    reason: str


Action = GetAction | PostAction | FinishAction | InvalidAction


def normalize_answer(content: str) -> str:
    """Strip whitespace and code fences the way upstream does before looking at the first word."""
    text = content.strip()
    for fence in FENCES:
        text = text.replace(fence, "")
    return text.strip()


def parse_action(content: str) -> Action:
    """Classify one model answer; GET is tested before POST, POST before FINISH(, as upstream."""
    text = normalize_answer(content)
    if text.startswith("GET"):
        return GetAction(url=text[3:].strip() + GET_SUFFIX)
    if text.startswith("POST"):
        lines = text.split("\n")
        url = lines[0][4:].strip()
        try:
            payload = json.loads("\n".join(lines[1:]))
        except (ValueError, RecursionError):
            return PostAction(url=url, payload=None, valid=False)
        return PostAction(url=url, payload=payload, valid=True)
    if text.startswith(FINISH_PREFIX):
        return FinishAction(result=text[len(FINISH_PREFIX) : -1])
    if not text:
        return InvalidAction(reason="empty answer")
    return InvalidAction(reason=f"answer does not start with GET, POST or FINISH(: {text[:60]!r}")


def strip_think(text: str) -> str:
    """Drop reasoning blocks (`<think>...</think>`) that reasoning models put before the action.

    A dangling `</think>` (templates that open the block in the prompt) also drops everything
    before it. The rest is stripped of surrounding whitespace so that the action is the first
    line of the recorded turn, which graders rely on.
    """
    text = _THINK_BLOCK.sub("", text)
    ends = list(_THINK_END.finditer(text))
    if ends:
        text = text[ends[-1].end() :]
    return text.strip()


def get_ok_turn(body: str) -> str:
    """User turn after a successful GET: the body exactly as the server sent it."""
    return f"{GET_OK_PREFIX}{body}. {CALL_FINISH_HINT}"


def get_error_turn(error_message: str) -> str:
    """User turn after a failed GET: upstream's `str(error)` text."""
    return GET_ERROR_PREFIX + error_message


def post_error_turn(error_message: str) -> str:
    """User turn after a POST the server refused (execute post-mode only)."""
    return POST_ERROR_PREFIX + error_message
