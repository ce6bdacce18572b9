"""JSON parsing where it is hot (the FHIR store, the graders' reads, the built-in model): orjson,
with the standard library as the fallback.

orjson is several times faster than `json.loads` and gives the same objects for what these
places parse, but it refuses a few things the standard library accepts (integers beyond 64
bits, `NaN`, lone surrogates in text). Those inputs fall back to `json.loads`, so results and
error messages stay exactly what they were; only the time changes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(text: str | bytes) -> Any:
    """Parse JSON text; what orjson refuses is parsed (or refused) by `json.loads`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
