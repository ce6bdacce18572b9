"""Built-in adversarial models: the reference agent with one way of writing orders changed.

They exist to show where graders that read the transcript and the state grader (which reads
what the EHR holds, `--grader=state`) disagree, on every task of a run:

- `reference-duplicate-posts` sends every order twice: the EHR then holds duplicates.
- `reference-refused-post` first sends an order the server refuses (HAPI answers 400), then
  works as the reference: nothing is created by the refused POST, but the official has_post
  rule counts it.
- `reference-fenced-posts` wraps every POST in a Markdown code fence: the loop sends it (as
  upstream's does), the official reading takes the url from the fence line.
- `reference-query-posts` POSTs to `<Type>?_format=json`: the server creates the resource, the
  transcript graders compare the url with `<base><Type>` exactly.

Each is stateless like the reference agent: it undoes its own changes to the conversation,
asks the reference agent for the next action, and changes that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from medbench.agent.protocol import normalize_answer
from medbench.models.builtin.reference_agent import reference_reply
from medbench.models.builtin.reference_facts import find_api_base

Messages = Sequence[Mapping[str, Any]]
Model = Callable[[list[dict[str, Any]]], str]

QUERY_SUFFIX = "?_format=json"
# A MedicationRequest the server must refuse: `subject` is a string where FHIR has a Reference object.
REFUSED_ORDER = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "subject": "Patient/unknown",
}


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _assistant_turns(messages: Messages) -> list[str]:
    return [_content(m) for m in messages if m.get("role") == "assistant"]


def _rewrite(messages: Messages, undo: Callable[[str], str]) -> list[dict[str, Any]]:
    """The conversation with every assistant turn passed through ``undo``."""
    return [{**m, "content": undo(_content(m))} if m.get("role") == "assistant" else dict(m) for m in messages]


def _drop_pairs(messages: Messages, drop: Callable[[int, str, list[str]], bool]) -> list[dict[str, Any]]:
    """The conversation without the assistant turns ``drop`` picks (each with the user reply after it)."""
    out: list[dict[str, Any]] = []
    earlier: list[str] = []
    skipping = False
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            skipping = drop(len(earlier), _content(message), earlier)
            earlier.append(_content(message))
            if skipping:
                continue
        elif role == "user" and skipping:
            skipping = False
            continue
        out.append(dict(message))
    return out


def duplicate_posts(messages: list[dict[str, Any]]) -> str:
    """Every POST the reference sends, sent again at once."""
    turns = _assistant_turns(messages)
    if turns and turns[-1].startswith("POST") and not (len(turns) > 1 and turns[-2] == turns[-1]):
        return turns[-1]

    def is_repeat(index: int, content: str, earlier: list[str]) -> bool:
        return content.startswith("POST") and bool(earlier) and earlier[-1] == content

    return reference_reply(_drop_pairs(messages, is_repeat))


def _refused_post(messages: Messages) -> str:
    prompt = next((_content(m) for m in messages if m.get("role") == "user"), "")
    return f"POST {find_api_base(prompt)}MedicationRequest\n{json.dumps(REFUSED_ORDER)}"


def refused_post_first(messages: list[dict[str, Any]]) -> str:
    """A POST the server refuses first, then the reference agent as if it had never been sent."""
    refused = _refused_post(messages)
    if not _assistant_turns(messages):
        return refused
    return reference_reply(_drop_pairs(messages, lambda index, content, earlier: index == 0 and content == refused))


def fenced_posts(messages: list[dict[str, Any]]) -> str:
    """Every POST inside a ``` fence (the loop removes fences before parsing, as upstream's does)."""
    reply = reference_reply(_rewrite(messages, normalize_answer))
    return f"```\n{reply}\n```" if reply.startswith("POST") else reply


def _without_query(content: str) -> str:
    first, sep, rest = content.partition("\n")
    if content.startswith("POST") and first.endswith(QUERY_SUFFIX):
        return first[: -len(QUERY_SUFFIX)] + sep + rest
    return content


def query_posts(messages: list[dict[str, Any]]) -> str:
    """Every POST to `<Type>?_format=json` instead of `<Type>`."""
    reply = reference_reply(_rewrite(messages, _without_query))
    if not reply.startswith("POST"):
        return reply
    first, sep, rest = reply.partition("\n")
    return first + QUERY_SUFFIX + sep + rest


ADVERSARIES: dict[str, Model] = {
    "reference-duplicate-posts": duplicate_posts,
    "reference-refused-post": refused_post_first,
    "reference-fenced-posts": fenced_posts,
    "reference-query-posts": query_posts,
}
