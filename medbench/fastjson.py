"""JSON parsing where it is hot and the text is known: orjson, the standard library as the fallback.

orjson is faster than `json.loads` and gives the same objects, with two exceptions: it refuses
`NaN`, `Infinity` and lone surrogates (those fall back to `json.loads` here, so they parse, or
fail with the standard library's message, exactly as before), and it reads an integer beyond
64 bits as a float. So this is only for text that cannot hold such an integer: the FHIR
store's base data (written by orjson, which refuses to write one) and the built-in model's
reading of its own conversation. Whatever reaches a grader, a cassette or a result from
outside keeps `json.loads`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(text: str | bytes) -> Any:
    """Parse JSON text known to hold no integer beyond 64 bits; what orjson refuses goes to `json.loads`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
