"""Small checking vocabulary shared by the graders: a verdict, and checks that explain failures.

Upstream graders are chains of ``assert payload[...] == ...`` where any exception means
incorrect. These helpers keep exactly that semantics (plain Python indexing, ``==`` and
``in``) but turn every failure into an ``Incorrect`` carrying a human-readable reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Path = Sequence[str | int]


class Incorrect(Exception):
    """Raised inside a grader to end it with an incorrect verdict and this reason."""


def render(path: Path) -> str:
    """``("dosageInstruction", 0, "route")`` -> ``dosageInstruction[0].route``."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def field(obj: Any, *path: str | int, what: str = "payload") -> Any:
    """``obj[p0][p1]...`` with Python indexing semantics; a failed step is ``Incorrect``."""
    value = obj
    for n, key in enumerate(path):
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise Incorrect(f"{what} has no {render(path[: n + 1])} ({type(exc).__name__})") from exc
    return value


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise Incorrect(reason)


def expect_equal(obj: Any, path: Path, expected: Any) -> None:
    value = field(obj, *path)
    require(value == expected, f"{render(path)} is {value!r}, expected {expected!r}")


def expect_contains(obj: Any, path: Path, needle: str) -> None:
    """Upstream's ``needle in value`` test, whatever type value has (a list holding it passes)."""
    value = field(obj, *path)
    try:
        found = needle in value
    except TypeError:
        found = False
    require(found, f"{render(path)} is {value!r}, which does not contain {needle!r}")


def parse_answer(result: str | None) -> Any:
    """``json.loads`` of the raw FINISH string; a parse failure means incorrect."""
    if result is None:
        raise Incorrect("no FINISH result")
    try:
        return json.loads(result)
    except (ValueError, RecursionError) as exc:
        shown = result if len(result) <= 200 else result[:200] + "..."
        raise Incorrect(f"FINISH result {shown!r} is not JSON ({exc})") from exc


def expect_answer(answer: Any, expected: Sequence[Any], *, or_empty: bool = False) -> None:
    """Python list equality with the reference (so ``[65.0] == [65]``); ``[]`` too if allowed."""
    if answer == expected or (or_empty and answer == []):
        return
    alternatives = f"{expected!r} or []" if or_empty else repr(expected)
    raise Incorrect(f"answer {answer!r} != expected {alternatives}")
