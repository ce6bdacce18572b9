"""The two built-in baselines: agents that never look at the chart.

They bound the benchmark from below. Graders accept `[]` wherever no order is needed, and a
read-only verdict only checks that nothing was POSTed, so an agent can pass tasks without doing
anything. On the official data, answering `FINISH([])` at once passes 70 of 300 tasks; giving up
with an answer that is not a list passes the 16 magnesium tasks with no value in the last 24 h
(5.3%, the figure a published critique reports). Put both beside every leaderboard.
"""

from __future__ import annotations

from typing import Any

GIVE_UP_ANSWER = "I cannot complete this task."
"""What `give-up` answers: plain text, neither a JSON list nor the word that graders read as an order."""


def finish_without_acting(messages: list[dict[str, Any]]) -> str:
    """`do-nothing`: every task answered at once with an empty list; no GET, no POST."""
    return "FINISH([])"


def give_up(messages: list[dict[str, Any]]) -> str:
    """`give-up`: every task ended at once with an answer that is not a list, the way an agent that
    gives up (or cannot produce a parseable answer) ends; no GET, no POST."""
    return f"FINISH({GIVE_UP_ANSWER})"


BASELINES = {"do-nothing": finish_without_acting, "give-up": give_up}


# Tools mode (`--protocol=tools`): the same two agents, answering with a call of the `finish` tool.
# `finish` takes a JSON list, so `give-up` puts its text in a one-item list: an answer graders
# cannot read as a value or an order, as in text mode.


def finish_without_acting_tools(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """`do-nothing` in tools mode: `finish(answers=[])` at once."""
    return [("finish", {"answers": []})]


def give_up_tools(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """`give-up` in tools mode: `finish(answers=["I cannot complete this task."])` at once."""
    return [("finish", {"answers": [GIVE_UP_ANSWER]})]


TOOL_BASELINES = {"do-nothing": finish_without_acting_tools, "give-up": give_up_tools}
