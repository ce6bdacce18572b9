"""Make whatever a model sent storable: valid Unicode text and JSON of bounded depth.

A model can answer with text that is not valid Unicode (a JSON `"\\ud800"` decodes to a lone
surrogate, which UTF-8 cannot encode) or with JSON nested thousands deep (which overflows
Python's recursion while it is parsed or written). Neither may cost an attempt its record:
result files, the xdist wire and pytest-json-report all need UTF-8-encodable, shallow JSON.
These helpers are applied where text leaves the harness (model requests, result lines); the
agent loop and the graders still see exactly what the model sent.
"""

from __future__ import annotations

import json
from typing import Any

REPLACEMENT = "\ufffd"
# Deeper JSON than this is stored as its raw text: far beyond any real answer, far below
# the recursion limit, whatever stack depth the writer is called at.
MAX_DEPTH = 100


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD; valid text is returned unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 joins a high/low pair that arrived as two code points; only truly lone halves are replaced.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of lists and dicts, counted without recursion; stops counting past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
    return deepest


def json_safe(value: Any) -> Any:
    """A copy of plain JSON data with valid text in every string and key (depth is the caller's check)."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_text(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def parse_shallow(text: str) -> tuple[bool, Any]:
    """``(True, json.loads(text))`` when the text is JSON of at most MAX_DEPTH levels, else ``(False, None)``."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return False, None
    if depth(parsed) > MAX_DEPTH:
        return False, None
    return True, parsed
