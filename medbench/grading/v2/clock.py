"""Time in the v2 graders: each task's "now", the baseline cut-off, and a resource's clinical date.

Upstream v2 anchors every time rule in the task's context ("It's <ISO time> now"), falls back
to a fixed default, and ignores every resource last updated after 2025-01-01 (the agent's own
writes, which the v2 tools really send). These helpers reproduce those rules exactly.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

DEFAULT_NOW = datetime.fromisoformat("2023-11-07T22:47:00+00:00")
CUTOFF = datetime.fromisoformat("2025-01-01T00:00:00+00:00")
CUTOFF_QUERY = "2025-01-01T00:00:00Z"  # `_lastUpdated=gt<this>`: written after the cut-off
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2}"
_NOW_CLAUSE = re.compile(rf"it'?s\s+({_ISO})\s+now", re.IGNORECASE)
_ANY_ISO = re.compile(_ISO)


def task_now(context: str | None) -> datetime:
    """The task's "now": its "It's <time> now" clause, else its last full timestamp, else the default."""
    text = context or ""
    match = _NOW_CLAUSE.search(text)
    if match:
        return datetime.fromisoformat(match.group(1))
    found = _ANY_ISO.findall(text)
    return datetime.fromisoformat(found[-1]) if found else DEFAULT_NOW


def parse_time(text: Any) -> datetime | None:
    """A FHIR dateTime as an aware datetime (a bare date is midnight UTC); None when unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=CUTOFF.tzinfo)
    return value


def is_baseline(resource: dict[str, Any], *, tolerate_missing_meta: bool = True) -> bool:
    """Upstream `before_cutoff`: no lastUpdated, or lastUpdated at or before 2025-01-01.

    Upstream's shared helper indexes `meta` directly (a resource without `meta` raises); task3
    and task8 keep copies that tolerate it. `tolerate_missing_meta=False` reproduces the former.
    """
    if tolerate_missing_meta:
        meta = resource.get("meta") or {}
    else:
        meta = resource["meta"]
    updated = meta.get("lastUpdated")
    if not updated:
        return True
    parsed = parse_time(updated)
    return parsed is None or parsed <= CUTOFF


def performed_time(resource: dict[str, Any], *, with_authored: bool = False) -> datetime | None:
    """Upstream's procedure date: performedDateTime, else period end, else period start (task10: authoredOn)."""
    period = resource.get("performedPeriod") or {}
    candidates = [resource.get("performedDateTime"), period.get("end"), period.get("start")]
    if with_authored:
        candidates.append(resource.get("authoredOn"))
    for text in candidates:
        if text:
            return parse_time(text)
    return None
