"""What graders read from a transcript: whether the agent wrote, and which POSTs were accepted.

Kept apart from the graders because the official reading has quirks (a substring test for
"POST", a fixed 4-character url slice) that every write-checking grader shares, and the
corrected mode swaps in a stricter reading in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medbench.agent.protocol import PostAction, parse_action

ACCEPTED_MARK = "POST request accepted"

Turn = Mapping[str, str]


@dataclass(frozen=True)
class Post:
    """One accepted POST as a grader sees it: the url and parsed payload the agent wrote."""

    url: str
    payload: Any
    turn: int


class TranscriptError(Exception):
    """The official reading of this transcript fails the way the upstream grader crashes."""


def _agent_turns(history: Sequence[Turn]) -> list[tuple[int, str]]:
    return [(i, turn["content"]) for i, turn in enumerate(history) if turn["role"] == "agent"]


def mentions_post(history: Sequence[Turn]) -> bool:
    """Official has_post: any agent turn containing "POST" anywhere (prose and rejected POSTs count)."""
    return any("POST" in content for _, content in _agent_turns(history))


def _split_post(content: str) -> tuple[str, Any]:
    lines = content.split("\n")
    return lines[0][4:].strip(), json.loads("\n".join(lines[1:]))


def official_accepted_posts(history: Sequence[Turn]) -> list[Post]:
    """Accepted POSTs as upstream extracts them.

    An agent turn containing "POST" whose next turn contains the acceptance text; url is the
    first line minus its first 4 characters, payload the JSON of the remaining lines; turns
    that do not parse are skipped. Upstream indexes the next turn without a bounds check, so
    a last turn containing "POST" (e.g. ``FINISH(["POST done"])``) crashes the grader, which
    counts as incorrect: we raise ``TranscriptError`` there.
    """
    posts = []
    for i, content in _agent_turns(history):
        if "POST" not in content:
            continue
        if i + 1 >= len(history):
            raise TranscriptError(
                f"last agent turn (turn {i}) contains 'POST' and no turn follows it; "
                "the upstream grader crashes on this transcript"
            )
        if ACCEPTED_MARK not in history[i + 1]["content"]:
            continue
        try:
            url, payload = _split_post(content)
        except (ValueError, RecursionError):
            continue
        posts.append(Post(url, payload, i))
    return posts


def corrected_accepted_posts(history: Sequence[Turn]) -> list[Post]:
    """Accepted POSTs as the agent loop accepted them.

    Only turns the loop's own parser reads as a valid POST action (so a fenced POST is graded
    by the url the loop saw) and that the loop acknowledged count; a last turn that merely
    mentions POST is not a POST.
    """
    posts = []
    for i, content in _agent_turns(history):
        action = parse_action(content)
        if not isinstance(action, PostAction) or not action.valid or i + 1 >= len(history):
            continue
        if ACCEPTED_MARK in history[i + 1]["content"]:
            posts.append(Post(action.url, action.payload, i))
    return posts


def corrected_has_post(history: Sequence[Turn]) -> bool:
    """Corrected has_post: the agent wrote something only if a POST was accepted."""
    return bool(corrected_accepted_posts(history))


def official_post_evidence(history: Sequence[Turn]) -> str:
    """What the official has_post rule saw, for reasons: the first agent turn containing "POST".

    A real, accepted POST is named by its url; any other turn (prose, a rejected or malformed
    POST, FINISH text) is quoted, so a reason never claims the agent POSTed when it only wrote the word.
    """
    for number, (i, content) in enumerate(_agent_turns(history), start=1):
        if "POST" not in content:
            continue
        action = parse_action(content)
        accepted = i + 1 < len(history) and ACCEPTED_MARK in history[i + 1]["content"]
        if isinstance(action, PostAction) and action.valid and accepted:
            return f"agent turn {number} POSTed to {action.url}"
        return (
            f"agent turn {number} contains the word POST ({_line_with(content, 'POST')!r}), "
            "which the official rule counts as a POST"
        )
    return "no agent turn contains POST"


def corrected_post_evidence(history: Sequence[Turn]) -> str:
    """What the corrected has_post rule saw: the first accepted POST."""
    posts = corrected_accepted_posts(history)
    if not posts:
        return "no POST was accepted"
    number = sum(1 for i, _ in _agent_turns(history) if i <= posts[0].turn)
    return f"agent turn {number} POSTed to {posts[0].url}"


def _line_with(content: str, word: str, limit: int = 80) -> str:
    line = next(line for line in content.split("\n") if word in line).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."
