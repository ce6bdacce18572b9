"""FHIR date/dateTime values as millisecond ranges, the way HAPI indexes and searches them.

A FHIR date carries its precision: ``2023-11-12`` means the whole day, ``2023-11`` the whole
month. Both stored values and search values are turned into an inclusive range
``[low_ms, high_ms]`` (UTC epoch milliseconds) so that search prefixes reduce to comparisons.
Values without an offset are read as UTC (the upstream Docker server runs in UTC).
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from medbench.fhir.errors import FhirError

# ' ' as an offset sign: a '+' in a query string is decoded to a space. HAPI FHIR reads it back
# as '+' (BaseDateTimeDt.getOffsetIndex: "'+' may have been replaced with ' ' by the time
# execution reaches this method").
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+\- ]\d{2}:\d{2})?)?)?)?$"
)

MIN_MS = -(2**62)
MAX_MS = 2**62


@lru_cache(maxsize=65536)
def parse_range(value: str) -> tuple[int, int]:
    """Inclusive [low, high] UTC-millisecond range that a FHIR date/dateTime/instant denotes.

    Raises FhirError(400) naming the value when it is not a FHIR date, so that a malformed
    search value is answered like HAPI answers it instead of matching nothing. Cached: a
    build meets the same timestamps many times (one lab panel, one draw time).
    """
    match = _DATE_RE.match(value.strip())
    if match is None:
        raise FhirError(400, f'Invalid date/time format: "{value}"')
    parts = match.groupdict()
    try:
        year = int(parts["y"])
        if parts["m"] is None:
            start = datetime(year, 1, 1, tzinfo=timezone.utc)
            return _ms(start), _ms(datetime(year + 1, 1, 1, tzinfo=timezone.utc)) - 1
        month = int(parts["m"])
        if parts["d"] is None:
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            days = calendar.monthrange(year, month)[1]
            return _ms(start), _ms(start + timedelta(days=days)) - 1
        day = int(parts["d"])
        if parts["H"] is None:
            start = datetime(year, month, day, tzinfo=timezone.utc)
            return _ms(start), _ms(start + timedelta(days=1)) - 1
        tz = _offset(parts["tz"])
        second = int(parts["S"]) if parts["S"] is not None else 0
        fraction = parts["f"]
        millis = int((fraction + "00")[:3]) if fraction is not None else 0
        start = datetime(year, month, day, int(parts["H"]), int(parts["M"]), second, millis * 1000, tzinfo=tz)
    except ValueError as exc:
        raise FhirError(400, f'Invalid date/time format: "{value}": {exc}') from None
    if parts["S"] is None:
        width = 60_000
    elif fraction is None:
        width = 1_000
    else:
        width = 1
    low = _ms(start)
    return low, low + width - 1


def now_instant() -> str:
    """The current time in HAPI's instant style (meta.lastUpdated): milliseconds, +00:00."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _offset(text: str | None) -> timezone:
    """The tzinfo of an offset suffix; a leading space stands for '+' (see module note)."""
    if text is None or text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
