"""The embedded FHIR R4 server: real HTTP on loopback, answering like the upstream HAPI JPA server.

Routes under `/fhir`: `metadata`, search `<Type>?...`, read `<Type>/<id>`, create `POST <Type>`
and paging `?_getpages=...`. Status lines carry no reason phrase (`HTTP/1.1 400 `), as the
upstream server sends them, so clients show `400 Client Error:  for url: ...`. Links use the
Host header the client sent, so a gateway can show `localhost:8080` while the port differs.

The app is plain WSGI served by waitress (`medbench.serving`): read timeouts, the body-size
limit (413), header limit (431) and the connection bound live there; every refusal, waitress's
own included, is a HAPI-style OperationOutcome. POST bodies are checked as FHIR R4 resources of
the URL's type (`medbench.fhir.validation`). Requests may carry `X-Medbench-Namespace` to keep
their writes apart from other attempts' (`medbench.fhir.namespaces`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from medbench.fhir.bundle import (
    operation_outcome,
    page_link,
    render,
    render_entry_resource,
    render_searchset,
    searchset,
    self_link,
)
from medbench.fhir.capability import capability_statement
from medbench.fhir.errors import FhirError
from medbench.fhir.namespaces import RESET_OPERATION, parse_namespace
from medbench.fhir.paging import PagedSearches
from medbench.fhir.rendered import EntryText, RenderedEntries
from medbench.fhir.search import parse_query
from medbench.fhir.searchparams import REGISTRY
from medbench.fhir.store import FhirStore
from medbench.fhir.validation import parse_json_body, validate_resource
from medbench.serving import BackgroundServer, ServerLimits

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from typing_extensions import Self


log = logging.getLogger(__name__)

CONTENT_TYPE = "application/fhir+json;charset=UTF-8"
_BODY_METHODS = ("POST", "PUT", "PATCH")
# The payload: a FHIR JSON object to render, text already rendered (searchsets), or no body.
_Answer = tuple[int, "dict[str, Any] | str | None", "dict[str, str]"]


class _FhirApp:
    """The WSGI app: one request in, one FHIR answer out; never raises."""

    def __init__(self, store: FhirStore, real_hosts: Callable[[], tuple[str, ...]]) -> None:
        self.store = store
        self.paged = PagedSearches()
        self.rendered = RenderedEntries()
        self._real_hosts = real_hosts

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path, query = _target(environ)
        params = parse_qsl(query, keep_blank_values=True)
        pretty = dict(params).get("_pretty") != "false"
        try:
            namespace = parse_namespace(environ.get("HTTP_X_MEDBENCH_NAMESPACE"))
            body = (
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) if method in _BODY_METHODS else None
            )
            status, payload, headers = self._route(environ, method, path, query, params, body, namespace)
        except FhirError as exc:
            status, payload, headers = exc.status, operation_outcome(exc.message), {}
        except Exception as exc:  # an internal bug must still produce a FHIR answer, not a dropped connection
            log.exception("internal error answering %s %s", method, path)
            status, payload, headers = 500, operation_outcome(f"Internal error: {exc!r}"[:500]), {}
        if payload is None:
            data = b""
        else:
            text = payload if isinstance(payload, str) else render(payload, pretty)
            data = text.encode("utf-8", "replace")
        response_headers = [("Content-Length", str(len(data))), *headers.items()]
        if payload is not None:
            response_headers.insert(0, ("Content-Type", CONTENT_TYPE))
        start_response(f"{status} ", response_headers)
        return [data]

    def _route(
        self,
        environ: dict[str, Any],
        method: str,
        path: str,
        query: str,
        params: list[tuple[str, str]],
        body: bytes | None,
        namespace: str,
    ) -> _Answer:
        if path != "/fhir" and not path.startswith("/fhir/"):
            raise FhirError(404, f"Unknown path {path[:200]}: this FHIR server's base is /fhir/")
        segments = [unquote(s) for s in path[len("/fhir") :].split("/") if s]
        base = _base(environ)
        if not segments:
            if method == "GET" and "_getpages" in dict(params):
                return 200, self._page(base, query, params, namespace), {}
            raise FhirError(
                400,
                "This is the base URL of FHIR server. Unable to handle this request, as it does not contain a resource type or operation name.",
            )
        if segments == ["metadata"] and method == "GET":
            return 200, capability_statement(base + "/"), {}
        if segments == [RESET_OPERATION] and method == "DELETE" and environ.get("HTTP_HOST") in self._real_hosts():
            self.store.reset_writes(namespace)
            return 204, None, {}
        resource_type = segments[0]
        if resource_type not in REGISTRY:
            raise FhirError(
                404,
                f"HAPI-0302: Unknown resource type '{resource_type[:100]}' - Server knows how to handle: [{', '.join(REGISTRY)}]",
            )
        if len(segments) == 1 and method == "GET":
            return 200, self._search(base, resource_type, params, namespace), {}
        if len(segments) == 1 and method == "POST":
            return self._create(base, resource_type, body or b"", namespace)
        if len(segments) == 2 and method == "GET":
            resource = self.store.read(resource_type, segments[1], namespace)
            if resource is None:
                raise FhirError(404, f"HAPI-2001: Resource {resource_type}/{segments[1][:100]} is not known")
            return 200, resource, {"ETag": f'W/"{resource.get("meta", {}).get("versionId", "1")}"'}
        raise FhirError(
            405 if len(segments) <= 2 else 400,
            f"{method} {path[:200]} is not supported by this server (read, search and create only)",
        )

    def _create(self, base: str, resource_type: str, body: bytes, namespace: str) -> _Answer:
        """Check the body as a `resource_type` (references must exist in this namespace's
        view), store it, and answer as HAPI does: 201, the stored resource, Location."""

        def exists(target_type: str, target_id: str) -> bool:
            return target_type in REGISTRY and self.store.read(target_type, target_id, namespace) is not None

        resource = validate_resource(resource_type, parse_json_body(body), exists)
        stored = self.store.create(resource, namespace)
        location = f"{base}/{resource_type}/{stored['id']}/_history/1"
        return 201, stored, {"Location": location, "Content-Location": location, "ETag": 'W/"1"'}

    def _search(
        self, base: str, resource_type: str, params: list[tuple[str, str]], namespace: str
    ) -> dict[str, Any] | str:
        query = parse_query(resource_type, params)
        seqs = self.store.search(query, namespace)
        links = [("self", self_link(base, resource_type, params))]
        has_next = 0 < query.count < len(seqs)
        if has_next:
            search_id = self.paged.add(seqs, query.count, query.total_mode, namespace)
            links.append(("next", page_link(base, search_id, query.count, query.count, _format(params))))
        total = _total(len(seqs), has_next, query.total_mode)
        return self._searchset(base, seqs[: query.count], links, total, namespace, params)

    def _page(self, base: str, query: str, params: list[tuple[str, str]], namespace: str) -> dict[str, Any] | str:
        values = dict(params)
        search_id = values["_getpages"]
        search = self.paged.get(search_id, namespace)
        offset = _int_or(values.get("_getpagesoffset"), 0)
        count = _int_or(values.get("_count"), search.count) or search.count
        fmt = _format(params)
        links = [("self", f"{base}?{query}")]
        has_next = offset + count < len(search.seqs)
        if has_next:
            links.append(("next", page_link(base, search_id, offset + count, count, fmt)))
        if offset > 0:
            links.append(("previous", page_link(base, search_id, max(0, offset - count), count, fmt)))
        total = _total(len(search.seqs), has_next, search.total_mode)
        return self._searchset(base, list(search.seqs[offset : offset + count]), links, total, namespace, params)

    def _searchset(
        self,
        base: str,
        seqs: list[int],
        links: list[tuple[str, str]],
        total: int | None,
        namespace: str,
        params: list[tuple[str, str]],
    ) -> dict[str, Any] | str:
        """The searchset of `seqs`: pretty text assembled from kept entry texts, or (for
        `_pretty=false`) the Bundle object, rendered compact by the caller."""
        if dict(params).get("_pretty") == "false":
            return searchset(base, self.store.fetch(seqs, namespace), links, total)
        return render_searchset(base, self._entry_texts(seqs, namespace), links, total)

    def _entry_texts(self, seqs: list[int], namespace: str) -> list[EntryText]:
        """Entry texts of `seqs` in order: kept ones for base data, the rest parsed and rendered
        (and kept when they are base data, which never changes)."""
        base_max_seq = self.store.base_max_seq
        texts = self.rendered.lookup(s for s in seqs if s <= base_max_seq)
        missing = [s for s in seqs if s not in texts]
        if missing:
            for seq, resource_type, resource_id, stored in self.store.fetch_rows(missing, namespace):
                entry = (resource_type, resource_id, render_entry_resource(self.store.parse(seq, stored)))
                texts[seq] = entry
                if seq <= base_max_seq:
                    self.rendered.keep(seq, entry)
        return [texts[s] for s in seqs if s in texts]


def _target(environ: dict[str, Any]) -> tuple[str, str]:
    """(raw path, raw query) as the client sent them: segments are split before unquoting,
    so `%2F` inside an id stays part of it."""
    uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    if "?" not in uri and environ.get("QUERY_STRING"):
        uri += "?" + environ["QUERY_STRING"]
    if uri.startswith(("http://", "https://")):  # absolute-form request target
        parts = urlsplit(uri)
        return parts.path or "/", parts.query
    path, _, query = uri.partition("?")
    return path, query


def _base(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '')}"
    return f"http://{host}/fhir"


def _render_error(code: int, reason: str, detail: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Waitress's own refusals (unparsable request, body or headers too large) as HAPI answers
    errors: no reason phrase, an OperationOutcome."""
    message = {
        413: f"HAPI-0450: Request body is too large ({detail.strip()}): this server accepts POST bodies up to its limit",
        431: f"Request header fields too large ({detail.strip()})",
    }.get(code, f"{reason}: {detail.strip()}")
    return f"{code} ", [("Content-Type", CONTENT_TYPE)], render(operation_outcome(message)).encode("utf-8")


def _int_or(text: str | None, default: int) -> int:
    """HAPI ignores unparsable or negative paging numbers and uses its default."""
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return value if value >= 0 else default


def _format(params: list[tuple[str, str]]) -> str | None:
    return next((v for n, v in params if n == "_format"), None)


def _total(matches: int, has_next: bool, total_mode: str | None) -> int | None:
    """HAPI leaves `total` out while more pages exist, unless `_total=accurate` asks for it."""
    if total_mode == "none":
        return None
    if has_next and total_mode != "accurate":
        return None
    return matches


class FhirServer:
    """An embedded FHIR server over a built database; a context manager (or start()/stop()).

    Each instance has its own in-memory writes layer, so parallel workers can share one
    database file. `limits` bounds what one request may cost (see `medbench.serving`).
    """

    def __init__(
        self, db_path: Path | str, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self.limits = limits or ServerLimits()
        self._app: _FhirApp | None = None
        self._http: BackgroundServer | None = None

    def start(self) -> Self:
        """Open the database and serve in a background thread; port 0 picks a free port."""
        if self._http is not None:
            return self
        store = FhirStore(self.db_path)
        self._app = _FhirApp(store, self._real_hosts)
        self._http = BackgroundServer(
            self._app, _render_error, self.host, self.port, self.limits, ident="medbench-fhir"
        )
        try:
            self._http.start()
        except OSError:
            store.close()
            self._app = self._http = None
            raise
        self.port = self._http.port
        return self

    def _real_hosts(self) -> tuple[str, ...]:
        """Host headers that name this server's real address (what `base_url` sends), the only
        ones allowed to drop a write namespace over HTTP; a wildcard bind counts as loopback."""
        hosts = (f"{self.host}:{self.port}",)
        if self.host in ("0.0.0.0", "", "::"):
            hosts += (f"127.0.0.1:{self.port}", f"[::1]:{self.port}")
        return hosts

    def stop(self) -> None:
        """Stop serving and close the database (the in-memory writes go with it)."""
        if self._http is None or self._app is None:
            return
        self._http.stop()
        self._app.store.close()
        self._http = None
        self._app = None

    def serve_forever(self, on_ready: Callable[[FhirServer], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (the `serve` command).

        `on_ready` announces the server inside the interruptible part: a Ctrl-C that arrives right
        after the announcement still stops the server cleanly."""
        try:
            self.start()
            if on_ready is not None:
                on_ready(self)
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def base_url(self) -> str:
        """The real base URL, with trailing slash: http://127.0.0.1:PORT/fhir/."""
        return f"http://{self.host}:{self.port}/fhir/"

    @property
    def store(self) -> FhirStore:
        if self._app is None:
            raise RuntimeError("FhirServer is not started; use it as a context manager or call start()")
        return self._app.store

    @property
    def paged(self) -> PagedSearches:
        """The kept paging state (what `next` links point at)."""
        if self._app is None:
            raise RuntimeError("FhirServer is not started; use it as a context manager or call start()")
        return self._app.paged

    @property
    def open_connections(self) -> int:
        """Client connections held open now (bounded by `limits.connection_limit`)."""
        return 0 if self._http is None else self._http.open_connections

    def reset_writes(self, namespace: str | None = None) -> None:
        """Drop the resources POSTed in `namespace`, or in every namespace when None (one
        task's writes never reach the next)."""
        self.store.reset_writes(namespace)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
