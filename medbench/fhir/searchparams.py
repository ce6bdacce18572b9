"""The search parameters the embedded server supports, and how resource values are indexed.

One table (`REGISTRY`) drives indexing at build time, validation of incoming searches and the
CapabilityStatement, so the three can never disagree. Paths and types follow the FHIR R4
search parameter definitions that HAPI FHIR indexes (e.g. Observation `date` is
`effective[x]`, MedicationRequest `date` is `dosageInstruction.timing.event`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from medbench.fhir.dates import MAX_MS, MIN_MS, parse_range
from medbench.fhir.errors import FhirError

TOKEN, STRING, DATE, REFERENCE = "token", "string", "date", "reference"


@dataclass(frozen=True)
class SearchParam:
    """One search parameter: its FHIR type, the element path it indexes, and an optional
    ContactPoint.system filter (for `phone` / `email`)."""

    name: str
    kind: str
    path: str
    only_system: str | None = None


# Every resource type also searches by `meta.lastUpdated`, as HAPI does (a common parameter). On
# the embedded EHR the seeded chart was last updated at or before the clinical now, so in an
# execute-mode namespace `_lastUpdated=gt<now>` finds exactly what the attempt created (state grader).
LAST_UPDATED = SearchParam("_lastUpdated", DATE, "meta.lastUpdated")


def _params(*items: SearchParam) -> dict[str, SearchParam]:
    return {p.name: p for p in (*items, LAST_UPDATED)}


_SUBJECT = (SearchParam("patient", REFERENCE, "subject"), SearchParam("subject", REFERENCE, "subject"))

REGISTRY: dict[str, dict[str, SearchParam]] = {
    "Patient": _params(
        SearchParam("identifier", TOKEN, "identifier"),
        SearchParam("name", STRING, "name"),
        SearchParam("family", STRING, "name.family"),
        SearchParam("given", STRING, "name.given"),
        SearchParam("birthdate", DATE, "birthDate"),
        SearchParam("gender", TOKEN, "gender"),
        SearchParam("address", STRING, "address"),
        SearchParam("address-city", STRING, "address.city"),
        SearchParam("address-state", STRING, "address.state"),
        SearchParam("address-postalcode", STRING, "address.postalCode"),
        SearchParam("address-country", STRING, "address.country"),
        SearchParam("telecom", TOKEN, "telecom"),
        SearchParam("phone", TOKEN, "telecom", only_system="phone"),
        SearchParam("email", TOKEN, "telecom", only_system="email"),
    ),
    "Observation": _params(
        *_SUBJECT,
        SearchParam("code", TOKEN, "code"),
        SearchParam("category", TOKEN, "category"),
        SearchParam("date", DATE, "effective[x]"),
        SearchParam("status", TOKEN, "status"),
    ),
    "Condition": _params(
        *_SUBJECT,
        SearchParam("code", TOKEN, "code"),
        SearchParam("category", TOKEN, "category"),
        SearchParam("clinical-status", TOKEN, "clinicalStatus"),
        SearchParam("onset-date", DATE, "onset[x]"),
        SearchParam("recorded-date", DATE, "recordedDate"),
    ),
    "MedicationRequest": _params(
        *_SUBJECT,
        SearchParam("code", TOKEN, "medication[x]"),
        SearchParam("category", TOKEN, "category"),
        SearchParam("status", TOKEN, "status"),
        SearchParam("intent", TOKEN, "intent"),
        SearchParam("authoredon", DATE, "authoredOn"),
        SearchParam("date", DATE, "dosageInstruction.timing.event"),
    ),
    "Procedure": _params(
        *_SUBJECT,
        SearchParam("code", TOKEN, "code"),
        SearchParam("category", TOKEN, "category"),
        SearchParam("status", TOKEN, "status"),
        SearchParam("date", DATE, "performed[x]"),
    ),
    "ServiceRequest": _params(
        *_SUBJECT,
        SearchParam("code", TOKEN, "code"),
        SearchParam("category", TOKEN, "category"),
        SearchParam("status", TOKEN, "status"),
        SearchParam("intent", TOKEN, "intent"),
        SearchParam("priority", TOKEN, "priority"),
        SearchParam("authored", DATE, "authoredOn"),
        SearchParam("occurrence", DATE, "occurrence[x]"),
    ),
}

# Search-control parameters accepted on every search type (besides `_id`).
CONTROL_PARAMS = frozenset({"_count", "_sort", "_format", "_pretty", "_total"})


def param_keys() -> list[str]:
    """Every indexed parameter as 'Type.name', in a stable order (ids in the database)."""
    return [
        f"{rtype}.{p.name}"
        for rtype, params in sorted(REGISTRY.items())
        for p in params.values()
        if p.kind != REFERENCE
    ]


def lookup(resource_type: str, name: str) -> SearchParam:
    """The parameter `name` of `resource_type`; 400 with HAPI's wording when unknown."""
    params = REGISTRY[resource_type]
    if name in params:
        return params[name]
    valid = ", ".join(sorted(["_id", *params]))
    raise FhirError(
        400,
        f'HAPI-0524: Unknown search parameter "{name}" for resource type "{resource_type}". '
        f"Valid search parameters for this search are: [{valid}]",
    )


def normalize(text: str) -> str:
    """HAPI's string-index normal form: accents removed, upper case (case/accent-insensitive)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def patient_of(resource: dict[str, Any]) -> str | None:
    """The MRN a resource belongs to: its own id for a Patient, else `subject` if it is a Patient."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    reference = (resource.get("subject") or {}).get("reference", "")
    if isinstance(reference, str) and reference.startswith("Patient/"):
        return reference[len("Patient/") :]
    return None


@dataclass
class IndexRows:
    """What one resource contributes to the token, string and date index tables."""

    tokens: list[tuple[str, str | None, str]]
    strings: list[tuple[str, str, str]]
    dates: list[tuple[str, int, int]]


# Suffixes a choice element `x[x]` can take for each kind of parameter (effectiveDateTime,
# onsetPeriod, medicationCodeableConcept...).
_CHOICE_SUFFIXES = {DATE: ("DateTime", "Period", "Instant", "Date"), TOKEN: ("CodeableConcept",), STRING: ("String",)}

_Path = tuple[tuple[str, ...], ...]


def _compile_path(param: SearchParam) -> _Path:
    """The param's dotted path as, per step, the keys that may hold it (several for x[x])."""
    return tuple(
        tuple(step[:-3] + suffix for suffix in _CHOICE_SUFFIXES[param.kind]) if step.endswith("[x]") else (step,)
        for step in param.path.split(".")
    )


# Per resource type: (index key, parameter, compiled path), precomputed because the full-scale
# build indexes ~700k resources and this is its inner loop.
_PLANS: dict[str, list[tuple[str, SearchParam, _Path]]] = {
    rtype: [(f"{rtype}.{p.name}", p, _compile_path(p)) for p in params.values() if p.kind != REFERENCE]
    for rtype, params in REGISTRY.items()
}


def index_rows(resource: dict[str, Any]) -> IndexRows:
    """Index rows of `resource` for every registered parameter of its type (key 'Type.name')."""
    rows = IndexRows([], [], [])
    for key, param, path in _PLANS.get(resource["resourceType"], ()):
        values = _values(resource, path)
        if not values:
            continue
        if param.kind == TOKEN:
            rows.tokens.extend(
                (key, system, code)
                for value in values
                for system, code in _tokens(value)
                if param.only_system is None or system == param.only_system
            )
        elif param.kind == STRING:
            rows.strings.extend((key, normalize(s), s) for value in values for s in _strings(value))
        else:
            rows.dates.extend((key, low, high) for value in values for low, high in _dates(value))
    return rows


def _values(resource: dict[str, Any], path: _Path) -> list[Any]:
    """Values at a compiled path, flattening lists along the way."""
    if len(path) == 1 and len(path[0]) == 1:
        value = resource.get(path[0][0])
        if value is None:
            return []
        return value if isinstance(value, list) else [value]
    current: list[Any] = [resource]
    for keys in path:
        found: list[Any] = []
        for node in current:
            if not isinstance(node, dict):
                continue
            for key in keys:
                value = node.get(key)
                if value is None:
                    continue
                if isinstance(value, list):
                    found.extend(value)
                else:
                    found.append(value)
        if not found:
            return found
        current = found
    return current


def _tokens(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value["coding"] or []:
                if coding.get("code") is not None:
                    yield coding.get("system"), str(coding["code"])
        elif "code" in value:
            yield value.get("system"), str(value["code"])
        elif "value" in value:
            yield value.get("system"), str(value["value"])


_STRING_PARTS = (
    "family",
    "given",
    "prefix",
    "suffix",
    "text",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for part in _STRING_PARTS:
            item = value.get(part)
            if isinstance(item, str):
                yield item
            elif isinstance(item, list):
                yield from (s for s in item if isinstance(s, str))


def _dates(value: Any) -> Iterator[tuple[int, int]]:
    try:
        if isinstance(value, str):
            yield parse_range(value)
        elif isinstance(value, dict) and ("start" in value or "end" in value):
            low = parse_range(value["start"])[0] if value.get("start") else MIN_MS
            high = parse_range(value["end"])[1] if value.get("end") else MAX_MS
            yield low, high
    except FhirError:
        return
