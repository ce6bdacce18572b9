"""POST bodies checked as HAPI FHIR checks them, with the FHIR R4 models of `fhir.resources`.

`parse_json_body` turns request bytes into JSON safely (nesting, lone surrogates, huge numbers,
NaN: all 400, never an exception the server did not expect). `validate_resource` checks the
value as the resource type of the URL and returns it normalised the way HAPI would store it:
elements in the FHIR definition order, a single value given for a repeating element turned
into a one-item list. Values are kept as the client wrote them (dates keep their offset).

What HAPI answers (documented in docs/fhir-server.md, "POST validation"): unparsable JSON, a body that is
not a resource of the URL's type, a wrong JSON type for an element, an unknown element, an
invalid primitive value (a date, a code outside a required binding) and an invalid reference
are 400 (the parser's and the JPA layer's errors); a structurally complete check that fails
(a required element missing, a choice element given twice) is 422, as HAPI's validating
interceptor answers. One tolerance follows the MedAgentBench function spec and graders: a JSON
string where a CodeableConcept is expected (`"route": "IV"`) is accepted and stored as
`{"text": "IV"}`, where HAPI's default parser would log and drop it.

The models are FHIR R4B (4.3.0, `fhir.resources.R4B`): the package ships no plain R4 module,
and R4B's resources match R4's for everything this server stores.
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.fhir.errors import FhirError

MAX_DEPTH = 64  # FHIR resources nest a dozen levels; HAPI's JSON parser also caps nesting
_PARSE = "HAPI-0450: Failed to parse request body as JSON resource. Error was: "
_SURROGATE = re.compile("[\ud800-\udfff]")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NUMBER_KINDS = {"Decimal", "Integer", "Integer64", "PositiveInt", "UnsignedInt"}

ReferenceExists = Callable[[str, str], bool]
# Required value sets the R4B models list abridged (ending in "+"), completed from FHIR R4;
# any other abridged list is not enforced.
_FULL_VALUE_SETS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("registered", "preliminary", "final", "amended", "+"): (  # ObservationStatus
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
}


def _parse_error(message: str, status: int = 400) -> FhirError:
    return FhirError(status, _PARSE + message)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a request body, or FhirError(400) with HAPI's parse-failure wording."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _parse_error(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise _parse_error(f"JSON nesting depth exceeds the maximum allowed ({MAX_DEPTH})") from None
    except ValueError as exc:  # JSONDecodeError, integers beyond Python's digit limit, NaN/Infinity
        raise _parse_error(str(exc)[:300]) from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    """Nesting depth and lone surrogates (valid JSON escapes, but no Unicode text), iteratively."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _parse_error(f"JSON nesting depth exceeds the maximum allowed ({MAX_DEPTH})")
        if isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    raise _parse_error(
                        "a JSON key holds a lone surrogate escape (\\ud800-\\udfff), which is not Unicode text"
                    )
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise _parse_error(
                "a JSON string holds a lone surrogate escape (\\ud800-\\udfff), which is not Unicode text"
            )


@dataclass(frozen=True)
class _Field:
    """One element of a FHIR model as the JSON walk needs it."""

    alias: str
    is_list: bool
    kind: str  # "boolean" | "number" | "string" | "complex" | "opaque"
    model: type | None = None
    enum_values: tuple[str, ...] | None = None
    reference_types: tuple[str, ...] | None = None


def _unwrap(annotation: Any) -> tuple[bool, Any]:
    """(is_list, item annotation) with Optional/None stripped."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
        elif origin in (list, typing.List) and args:  # noqa: UP006
            is_list = True
            annotation = args[0]
        else:
            return is_list, annotation


def _field_of(alias: str, info: Any) -> _Field:
    is_list, item = _unwrap(info.annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    enum_values = tuple(extra["enum_values"]) if extra.get("enum_values") else None
    if enum_values and "+" in enum_values:  # the model's list is abridged ("and more codes")
        enum_values = _FULL_VALUE_SETS.get(enum_values)
    reference_types = tuple(extra["enum_reference_types"]) if extra.get("enum_reference_types") else None
    if alias.startswith("_"):
        return _Field(alias, is_list, "opaque")
    if item is bool:
        return _Field(alias, is_list, "boolean")
    if typing.get_origin(item) is typing.Annotated:
        marker = type(typing.get_args(item)[1]).__name__
        return _Field(alias, is_list, "number" if marker in _NUMBER_KINDS else "string", enum_values=enum_values)
    get_model = getattr(item, "get_model_klass", None)
    if get_model is not None:
        model = get_model()
        if _is_resource_model(model):
            return _Field(alias, is_list, "opaque")  # contained resources: checked by the model
        return _Field(alias, is_list, "complex", model, reference_types=reference_types)
    return _Field(alias, is_list, "opaque")


@functools.cache
def _fields(model: type) -> dict[str, _Field]:
    """JSON key -> field, in the FHIR definition order (HAPI writes elements in that order)."""
    by_name = {
        name: info for name, info in model.model_fields.items() if name not in ("fhir_comments", "resource_type")
    }
    ordered: list[str] = []
    for name in model.elements_sequence():
        ordered.extend(n for n in (name, name + "__ext") if n in by_name and n not in ordered)
    ordered.extend(name for name in by_name if name not in ordered)
    return {by_name[name].alias or name: _field_of(by_name[name].alias or name, by_name[name]) for name in ordered}


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")


@functools.lru_cache(maxsize=256)
def model_class(resource_type: str) -> type | None:
    """The R4B model class of a resource type, or None when FHIR has no such resource (the
    name is checked first: clients choose it, and the lookup imports a module by that name)."""
    from fhir.resources.R4B import get_fhir_model_class

    if not _TYPE_NAME.fullmatch(resource_type):
        return None
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None
    return model if _is_resource_model(model) and model.__name__ == resource_type else None


def _is_resource_model(model: type) -> bool:
    from fhir.resources.R4B.resource import Resource

    return isinstance(model, type) and issubclass(model, Resource)


def _json_kind(value: Any) -> str:
    """HAPI's name for a JSON value's type: OBJECT, ARRAY, SCALAR (STRING|NUMBER|BOOLEAN), NULL."""
    if isinstance(value, dict):
        return "OBJECT"
    if isinstance(value, list):
        return "ARRAY"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "SCALAR (BOOLEAN)"
    return "SCALAR (NUMBER)" if isinstance(value, (int, float)) else "SCALAR (STRING)"


_EXPECTED = {
    "boolean": "SCALAR (BOOLEAN)",
    "number": "SCALAR (NUMBER)",
    "string": "SCALAR (STRING)",
    "complex": "OBJECT",
}


class _Walk:
    """One resource's walk: JSON types, unknown elements, codes, references; builds the
    normalised copy."""

    def __init__(self, resource_type: str, reference_exists: ReferenceExists) -> None:
        self.resource_type = resource_type
        self.reference_exists = reference_exists

    def object(
        self, value: dict[str, Any], model: type, path: str, reference_types: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        fields = _fields(model)
        for key in value:
            if key not in fields:
                raise _parse_error(f"[element=\"{path}\"] Unknown element '{key}' found during parse")
        out: dict[str, Any] = {}
        for key, field in fields.items():
            if key not in value:
                continue
            child = self.element(value[key], field, f"{path}.{key}")
            if child != []:
                out[key] = child
        if model.__name__ == "Reference" and isinstance(out.get("reference"), str):
            self.reference(out["reference"], path, reference_types)
        return out

    def element(self, value: Any, field: _Field, path: str) -> Any:
        if field.kind == "opaque":
            return value
        if field.is_list:
            # HAPI's JSON parser reads a single value given for a repeating element as one item.
            items = value if isinstance(value, list) else [value]
            return [self.single(item, field, path) for item in items]
        if isinstance(value, list):
            raise _parse_error(
                f"[element=\"{path}\"] Multiple repetitions of non-repeatable element '{field.alias}' found during parse"
            )
        return self.single(value, field, path)

    def single(self, value: Any, field: _Field, path: str) -> Any:
        kind = field.kind
        if (
            kind == "complex"
            and isinstance(value, str)
            and field.model is not None
            and field.model.__name__ == "CodeableConcept"
        ):
            return {"text": value}  # MedAgentBench's `"route": "IV"`; see the module docstring
        if _json_kind(value) != _EXPECTED[kind]:
            raise _parse_error(
                f'[element="{path}"] Found incorrect type for element {field.alias} - Expected {_EXPECTED[kind]} and found {_json_kind(value)}'
            )
        if kind == "string" and field.enum_values and value not in field.enum_values:
            raise _parse_error(
                f'[element="{path}"] Invalid attribute value "{value[:100]}": Unknown code \'{value[:100]}\' (allowed: {", ".join(field.enum_values)})'
            )
        if kind == "complex":
            assert field.model is not None
            return self.object(value, field.model, path, field.reference_types)
        return value

    def reference(self, reference: str, path: str, allowed: tuple[str, ...] | None) -> None:
        """HAPI JPA's checks of a literal reference on create (referential integrity is on)."""
        if reference.startswith("#"):
            return
        if "://" in reference or reference.startswith(("urn:", "//")):
            raise FhirError(
                400,
                f'HAPI-0507: Resource contains external reference to URL "{reference[:200]}" but this server is not configured to allow external references',
            )
        parts = reference.split("/")
        if len(parts) == 4 and parts[2] == "_history":
            parts = parts[:2]
        if len(parts) != 2 or not parts[0]:
            raise FhirError(
                400,
                f"HAPI-0505: Invalid resource reference found at path[{path}] - Does not contain resource type - {reference[:200]}",
            )
        target_type, target_id = parts
        if model_class(target_type) is None:
            raise FhirError(
                400,
                f"Invalid resource reference found at path[{path}] - Resource type is unknown or not supported on this server - {reference[:200]}",
            )
        if allowed and "Resource" not in allowed and target_type not in allowed:
            raise FhirError(
                400,
                f"Invalid reference found at path '{path}'. Resource type '{target_type}' is not valid for this path",
            )
        if not _ID.fullmatch(target_id) or not self.reference_exists(target_type, target_id):
            raise FhirError(
                400, f"HAPI-1094: Resource {target_type}/{target_id[:100]} not found, specified in path: {path}"
            )


def validate_resource(resource_type: str, value: Any, reference_exists: ReferenceExists) -> dict[str, Any]:
    """The POSTed `value` checked as a `resource_type` and normalised for storage (no id, no
    server meta: the store sets them); raises FhirError 400/422 naming the first problem."""
    if not isinstance(value, dict):
        raise _parse_error(f"the body is a JSON {_json_kind(value).lower()}, not a JSON object")
    found = value.get("resourceType")
    if found is None:
        raise _parse_error("Invalid JSON content detected, missing required element: 'resourceType'")
    if found != resource_type:
        raise FhirError(
            400, f'Incorrect resource type found, expected "{resource_type}" but found "{str(found)[:100]}"'
        )
    model = model_class(resource_type)
    if model is None:
        raise FhirError(404, f"HAPI-0302: Unknown resource type '{resource_type}'")
    body = {k: v for k, v in value.items() if k not in ("resourceType", "id")}
    normalised = {
        "resourceType": resource_type,
        **_Walk(resource_type, reference_exists).object(body, model, resource_type),
    }
    _model_check(model, normalised)
    return normalised


def _model_check(model: type, resource: dict[str, Any]) -> None:
    """What the walk leaves to the model: value formats (dates, ids, patterns), required
    elements and choice-type rules."""
    from pydantic import ValidationError

    try:
        model.model_validate(resource)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in (model.__name__, *error["loc"]) if not isinstance(part, int))
        kind, message = error["type"], error["msg"].removeprefix("Value error, ")
        if "missing" in kind:
            raise FhirError(422, f"{location}: minimum required = 1, but only found 0") from None
        if kind.startswith("fhir-") or not error["loc"]:
            raise FhirError(422, f"{location}: {message}") from None
        shown = error.get("input")
        shown = shown[:100] if isinstance(shown, str) else json.dumps(shown, default=str)[:100]
        raise _parse_error(f'[element="{location}"] Invalid attribute value "{shown}": {message}') from None
    except (TypeError, ValueError, RecursionError) as exc:  # a model bug must still be a 4xx, not a 500
        raise FhirError(422, f"{model.__name__}: {str(exc)[:300]}") from None
