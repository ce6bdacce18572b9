"""Turn a FHIR search query string into a validated `Query`, with HAPI R4 semantics.

Pure: no I/O. The store compiles a `Query` to SQL; the server builds bundles from its
results. Decisions pinned by tests (tests/test_fhir_search.py), with their HAPI sources:
- unknown parameters -> 400 "HAPI-0524: Unknown search parameter ..." (HAPI JPA answers an
  unknown parameter with InvalidRequestException unless `Prefer: handling=lenient`);
- blank values are ignored, as HAPI ignores blank parameters;
- an unparsable `_count` is ignored (RestfulServerUtils.tryToExtractNamedParameter);
- a date offset whose '+' was decoded to ' ' is read as '+' (BaseDateTimeDt.getOffsetIndex);
- comma-separated (OR) date values -> 400, as the upstream server answered agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medbench.fhir.dates import parse_range
from medbench.fhir.errors import FhirError
from medbench.fhir.searchparams import (
    CONTROL_PARAMS,
    DATE,
    REFERENCE,
    STRING,
    TOKEN,
    lookup,
    normalize,
)

DEFAULT_PAGE_SIZE = 20
# OR-ed values one parameter may list (`code=A,B,...`): each becomes a term of one SQL
# expression, and SQLite refuses expressions deeper than 1,000 terms. Agents send one or two.
MAX_OR_VALUES = 100
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})

ANY_SYSTEM = object()


@dataclass(frozen=True)
class TokenClause:
    """Matches when any (system, code) alternative matches; system ANY_SYSTEM = any, None = none."""

    key: str
    alternatives: tuple[tuple[object, str | None], ...]


@dataclass(frozen=True)
class StringClause:
    """`mode` is "start" (HAPI default), "exact" or "contains"; values are ORed."""

    key: str
    mode: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class DateClause:
    """One prefixed date value: `prefix` applied to the search range [low, high]."""

    key: str
    prefix: str
    low: int
    high: int


Clause = TokenClause | StringClause | DateClause


@dataclass
class Query:
    """A validated search: filters, patient scope, sort keys and paging options."""

    resource_type: str
    clauses: list[Clause] = field(default_factory=list)
    patients: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)
    count: int = DEFAULT_PAGE_SIZE
    total_mode: str | None = None


def parse_query(resource_type: str, params: list[tuple[str, str]]) -> Query:
    """Validate and interpret decoded (name, value) pairs for a search on `resource_type`."""
    query = Query(resource_type)
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if name in CONTROL_PARAMS:
            _apply_control(query, name, value)
            continue
        if value == "":
            continue
        if value.count(",") >= MAX_OR_VALUES:
            raise FhirError(
                400,
                f"Too many values for search parameter {raw_name[:100]}: at most {MAX_OR_VALUES} comma-separated values are supported",
            )
        if name == "_id":
            query.ids = _intersect(query.ids, value.split(","))
            continue
        param = lookup(resource_type, name)
        if param.kind == REFERENCE:
            query.patients = _intersect(query.patients, _references(raw_name, modifier, value))
        elif param.kind == TOKEN:
            _no_modifier(raw_name, modifier)
            query.clauses.append(TokenClause(f"{resource_type}.{name}", tuple(_token(v) for v in value.split(","))))
        elif param.kind == STRING:
            if modifier not in ("", "exact", "contains"):
                _no_modifier(raw_name, modifier)
            values = tuple(v if modifier == "exact" else normalize(v) for v in value.split(","))
            query.clauses.append(StringClause(f"{resource_type}.{name}", modifier or "start", values))
        elif param.kind == DATE:
            _no_modifier(raw_name, modifier)
            query.clauses.append(_date(f"{resource_type}.{name}", name, value))
    return query


def _apply_control(query: Query, name: str, value: str) -> None:
    """Paging, sorting and format options (`_pretty` is the HTTP layer's business)."""
    if name == "_count":
        try:
            count = int(value)
        except ValueError:
            return
        if count >= 0:
            query.count = count
    elif name == "_sort":
        query.sort = [_sort_key(query.resource_type, item) for item in value.split(",") if item]
    elif name == "_format":
        if value and value.split(";")[0].strip() not in JSON_FORMATS:
            raise FhirError(
                400, f'Unsupported _format "{value}": this embedded server answers JSON only (_format=json)'
            )
    elif name == "_total":
        if value not in ("", "none", "estimate", "accurate"):
            raise FhirError(400, f'Invalid _total value "{value}": expected none, estimate or accurate')
        query.total_mode = value or None


def _sort_key(resource_type: str, item: str) -> tuple[str, bool]:
    descending = item.startswith("-")
    name = item.lstrip("-")
    if name == "_id":
        return "_id", descending
    param = lookup(resource_type, name)
    if param.kind != DATE:
        raise FhirError(
            400, f'Sorting by "{name}" is not supported for {resource_type}: sort by a date parameter or _id'
        )
    return f"{resource_type}.{name}", descending


def _intersect(current: frozenset[str] | None, values: list[str]) -> frozenset[str]:
    new = frozenset(values)
    return new if current is None else current & new


def _no_modifier(raw_name: str, modifier: str) -> None:
    if modifier:
        raise FhirError(400, f'Unsupported search modifier ":{modifier}" in parameter "{raw_name}"')


def _references(raw_name: str, modifier: str, value: str) -> list[str]:
    """Patient ids a patient/subject value names: `S123`, `Patient/S123` or an absolute URL."""
    if modifier not in ("", "Patient"):
        _no_modifier(raw_name, modifier)
    ids = []
    for item in value.split(","):
        parts = item.rstrip("/").split("/")
        if len(parts) == 1:
            ids.append(parts[0])
            continue
        target_type, target_id = parts[-2], parts[-1]
        if target_type == "Patient":
            ids.append(target_id)
        elif raw_name.startswith("patient"):
            raise FhirError(
                400,
                f'Resource type "{target_type}" is not a valid target type for reference search parameter "{raw_name}"',
            )
    return ids


def _token(value: str) -> tuple[object, str | None]:
    if "|" not in value:
        return ANY_SYSTEM, value
    system, code = value.split("|", 1)
    return (system or None), (code or None)


def _date(key: str, name: str, value: str) -> DateClause:
    if "," in value:
        raise FhirError(
            400, f'Multiple (comma-separated) values are not supported for date parameter "{name}": {value}'
        )
    prefix = "eq"
    if value[:2] in DATE_PREFIXES:
        prefix, value = value[:2], value[2:]
    low, high = parse_range(value)
    return DateClause(key, prefix, low, high)
