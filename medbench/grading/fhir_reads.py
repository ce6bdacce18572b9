"""The FHIR reads graders make, and the reference values upstream derives from them.

Graders must query the same server the agent used (answers for tasks 2, 4-7, 9, 10 depend on
its data), so every read goes through the run's gateway with the api base the prompt showed.
The arithmetic mirrors upstream on purpose: a float sum in server order, strict ">" so ties
keep the first entry, timezone-aware ``datetime.fromisoformat`` (a naive timestamp then fails
the comparison and the task is incorrect, as upstream).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from medbench.clock import NOW


class GatewayResponse(Protocol):
    ok: bool
    status: int | None
    text: str


class Gateway(Protocol):
    def get(self, url: str) -> GatewayResponse: ...


class ReadError(Exception):
    """A grader's FHIR read failed or returned data of the wrong shape; the verdict is incorrect."""


@dataclass(frozen=True)
class Measurement:
    """One Observation as graders read it: parsed time, the time string as stored, and value."""

    time: datetime
    time_text: str
    value: Any


def observation_url(api_base: str, mrn: str, code: str) -> str:
    return f"{api_base}Observation?patient={mrn}&code={code}&_count=5000&_format=json"


def patient_url(api_base: str, mrn: str) -> str:
    return f"{api_base}Patient?identifier={mrn}&_format=json"


def fetch_json(gateway: Gateway, url: str) -> Any:
    """GET ``url`` and parse the body; failures become ``ReadError`` naming the url."""
    response = gateway.get(url)
    if not response.ok:
        raise ReadError(f"GET {url} failed with status {response.status}")
    try:
        return json.loads(response.text)
    except ValueError as exc:
        raise ReadError(f"GET {url} did not return JSON: {exc}") from exc


def _next_link(bundle: Any) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == "next":
            return link.get("url")
    return None


def read_observations(
    gateway: Gateway,
    api_base: str,
    mrn: str,
    code: str,
    follow_next: bool = False,
    exclude: frozenset[str] = frozenset(),
) -> list[Measurement]:
    """Every Observation of ``code`` for ``mrn`` in server order.

    Upstream reads only the first page of the ``_count=5000`` query; ``follow_next`` (used by
    the corrected mode) also follows ``next`` links, for servers that cap the page size.
    ``exclude`` holds ids to leave out: the state grader reads the chart as it was, without
    Observations the attempt itself created.
    """
    url = observation_url(api_base, mrn, code)
    bundle = fetch_json(gateway, url)
    try:
        entries = list(bundle.get("entry", []))
        next_url = _next_link(bundle) if follow_next else None
        while next_url:
            page = fetch_json(gateway, next_url)
            entries.extend(page.get("entry", []))
            next_url = _next_link(page)
    except (AttributeError, TypeError) as exc:
        raise ReadError(f"GET {url} did not return a Bundle: {exc!r}") from exc
    measurements = []
    for n, entry in enumerate(entries):
        if (
            exclude
            and isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and entry["resource"].get("id") in exclude
        ):
            continue
        try:
            text = entry["resource"]["effectiveDateTime"]
            measurements.append(
                Measurement(datetime.fromisoformat(text), text, entry["resource"]["valueQuantity"]["value"])
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ReadError(f"{code} Observation entry {n} from {url} is unreadable: {exc!r}") from exc
    return measurements


def latest(measurements: list[Measurement]) -> Measurement | None:
    """The measurement with the greatest time; ties keep the first seen (upstream uses ">")."""
    best = None
    for m in measurements:
        if best is None or m.time > best.time:
            best = m
    return best


def within_24h(measurements: list[Measurement]) -> list[Measurement]:
    """Measurements at or after NOW - 24 h, with no upper bound (as upstream)."""
    cutoff = NOW - timedelta(hours=24)
    return [m for m in measurements if m.time >= cutoff]


def read_birth_date(gateway: Gateway, api_base: str, mrn: str) -> datetime:
    """birthDate of the first Patient matching the MRN, parsed strictly as YYYY-MM-DD."""
    url = patient_url(api_base, mrn)
    bundle = fetch_json(gateway, url)
    try:
        return datetime.strptime(bundle["entry"][0]["resource"]["birthDate"], "%Y-%m-%d")
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ReadError(f"no readable birthDate in {url}: {exc!r}") from exc


def age_at_now(birth_date: datetime) -> int:
    """Whole years from birth to NOW, minus one if the birthday has not come yet in 2023."""
    age = NOW.year - birth_date.year
    if (NOW.month, NOW.day) < (birth_date.month, birth_date.day):
        age -= 1
    return age
