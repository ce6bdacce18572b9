"""Response bodies in HAPI FHIR's exact text style: searchset Bundles, OperationOutcomes, links.

The model reads these bodies verbatim, so the text matters, not just the JSON: HAPI's pretty
printer indents by two spaces, opens arrays of objects on the key's line (`"link": [ {`,
`}, {`, `} ]`) and writes arrays of primitives inline (`"given": [ "Lisa" ]`).
"""

from __future__ import annotations

import json
import uuid
from json.encoder import encode_basestring
from typing import Any
from urllib.parse import quote

from medbench.fhir.dates import now_instant


def render(resource: Any, pretty: bool = True) -> str:
    """A FHIR JSON body as HAPI writes it (pretty) or compact (`_pretty=false`)."""
    if not pretty:
        return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    out: list[str] = []
    _write(resource, "", out)
    return "".join(out)


# The renderer runs over every entry of every response (a grader's `_count=5000` answer can
# be ~1 MB of text), so it avoids per-value json.dumps calls: strings go through the C string
# encoder, numbers through their repr (as json does), and object keys are encoded once.
_encode = encode_basestring
_key_text: dict[str, str] = {}
_CONTAINERS = (dict, list)


def _write(value: Any, indent: str, out: list[str]) -> None:
    kind = type(value)
    if kind is dict:
        if not value:
            out.append("{ }")
            return
        inner = indent + "  "
        separator = ",\n" + inner
        out.append("{\n" + inner)
        first = True
        for key, item in value.items():
            if not first:
                out.append(separator)
            first = False
            text = _key_text.get(key)
            if text is None:
                text = _key_text.setdefault(key, _encode(key) + ": ")
            out.append(text)
            _write(item, inner, out)
        out.append("\n" + indent + "}")
    elif kind is list:
        if not any(type(item) in _CONTAINERS for item in value):
            out.append("[ " + ", ".join(_scalar(item) for item in value) + " ]")
            return
        out.append("[ ")
        for position, item in enumerate(value):
            if position:
                out.append(", ")
            _write(item, indent, out)
        out.append(" ]")
    else:
        out.append(_scalar(value))


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is float:
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False)


# Inside a searchset, a resource sits at this indent (bundle -> "entry" list -> entry object).
ENTRY_RESOURCE_INDENT = "    "


def render_entry_resource(resource: dict[str, Any]) -> str:
    """A resource's pretty text as it appears inside a searchset entry (`"resource": <this>`).

    It does not depend on the request (the base URL is only in `fullUrl`), so the server can
    keep it and assemble later bundles from it (`render_searchset`)."""
    out: list[str] = []
    _write(resource, ENTRY_RESOURCE_INDENT, out)
    return "".join(out)


def render_searchset(
    base: str, entries: list[tuple[str, str, str]], links: list[tuple[str, str]], total: int | None
) -> str:
    """The pretty text of `searchset(...)`, assembled from already rendered entries.

    `entries` are (resource type, id, `render_entry_resource` text). Byte-equal to
    `render(searchset(base, resources, links, total))`: the bundle is rendered without its
    entries, and the entry list (its last key) is spliced in with the renderer's layout."""
    head = render(searchset(base, [], links, total))
    if not entries:
        return head
    parts = [
        '{\n    "fullUrl": '
        + _encode(f"{base}/{resource_type}/{resource_id}")
        + ',\n    "resource": '
        + text
        + ',\n    "search": {\n      "mode": "match"\n    }\n  }'
        for resource_type, resource_id, text in entries
    ]
    return head[: -len("\n}")] + ',\n  "entry": [ ' + ", ".join(parts) + " ]\n}"


def escape_param(text: str) -> str:
    """HAPI's UrlUtil.escapeUrlParam: percent-encode all but letters, digits and `-_.*`."""
    return quote(text, safe="*").replace("~", "%7E")


def self_link(base: str, resource_type: str, params: list[tuple[str, str]]) -> str:
    """The searchset self link: parameters sorted by name (values in request order), escaped."""
    if not params:
        return f"{base}/{resource_type}"
    ordered = sorted(params, key=lambda item: item[0])
    return f"{base}/{resource_type}?" + "&".join(f"{escape_param(n)}={escape_param(v)}" for n, v in ordered)


def page_link(base: str, search_id: str, offset: int, count: int, fmt: str | None) -> str:
    """A `_getpages` link as HAPI's RestfulServerUtils.createPagingLink writes it."""
    link = f"{base}?_getpages={escape_param(search_id)}&_getpagesoffset={offset}&_count={count}"
    if fmt is not None:
        link += f"&_format={escape_param(fmt)}"
    return link + "&_pretty=true&_bundletype=searchset"


def searchset(
    base: str,
    resources: list[dict[str, Any]],
    links: list[tuple[str, str]],
    total: int | None,
) -> dict[str, Any]:
    """A searchset Bundle: fresh uuid4 id, lastUpdated now, `total` only when given."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = [{"relation": relation, "url": url} for relation, url in links]
    if resources:
        bundle["entry"] = [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ]
    return bundle


def operation_outcome(message: str, severity: str = "error", code: str = "processing") -> dict[str, Any]:
    """The OperationOutcome HAPI sends with an error status."""
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": message}]}
