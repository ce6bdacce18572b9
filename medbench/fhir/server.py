"""The embedded FHIR R4 server: real HTTP on loopback, answering like the upstream HAPI JPA server.

Routes under `/fhir`: `metadata`, search `<Type>?...`, read `<Type>/<id>`, create `POST <Type>`
and paging `?_getpages=...`. Status lines carry no reason phrase (`HTTP/1.1 400 `), as the
upstream server sends them, so clients show `400 Client Error:  for url: ...`. Links use the
Host header the client sent, so a gateway can show `localhost:8080` while the port differs.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from medbench.fhir.bundle import (
    operation_outcome,
    page_link,
    render,
    searchset,
    self_link,
)
from medbench.fhir.capability import capability_statement
from medbench.fhir.errors import FhirError
from medbench.fhir.search import parse_query
from medbench.fhir.searchparams import REGISTRY
from medbench.fhir.store import FhirStore

if TYPE_CHECKING:
    from typing_extensions import Self

    from medbench.ehr.seating import Seating

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/fhir+json;charset=UTF-8"
MAX_PAGED_SEARCHES = 1000


@dataclass
class _PagedSearch:
    seqs: list[int]
    count: int
    total_mode: str | None


class _PagedSearches:
    """Server-side state behind `next` links: the full match list of recent large searches."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, _PagedSearch] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, search: _PagedSearch) -> str:
        search_id = str(uuid.uuid4())
        with self._lock:
            self._items[search_id] = search
            while len(self._items) > MAX_PAGED_SEARCHES:
                self._items.popitem(last=False)
        return search_id

    def get(self, search_id: str) -> _PagedSearch:
        with self._lock:
            search = self._items.get(search_id)
        if search is None:
            raise FhirError(410, f'Search ID "{search_id}" does not exist and may have expired')
        return search


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "medbench-fhir"
    # Headers and body go out as separate writes; with Nagle's algorithm on, the body then
    # waits for the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True
    server: _FhirHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        pretty = dict(params).get("_pretty") != "false"
        try:
            body = self._read_body() if method in ("POST", "PUT", "PATCH") else None
            status, payload, headers = self._route(method, path, query, params, body)
        except FhirError as exc:
            status, payload, headers = exc.status, operation_outcome(exc.message), {}
        except Exception as exc:  # an internal bug must still produce a FHIR answer, not a dropped connection
            log.exception("internal error answering %s %s", method, self.path)
            status, payload, headers = 500, operation_outcome(f"Internal error: {exc!r}"), {}
        self._send(status, render(payload, pretty), headers)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdigit():
            self.close_connection = True  # the unread body would corrupt the next request
            raise FhirError(400, f"Invalid Content-Length header {length!r}: send the request body with its length")
        return self.rfile.read(int(length))

    def _base(self) -> str:
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        return f"http://{host}/fhir"

    def _route(
        self, method: str, path: str, query: str, params: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if path != "/fhir" and not path.startswith("/fhir/"):
            raise FhirError(404, f"Unknown path {path}: this FHIR server's base is /fhir/")
        segments = [unquote(s) for s in path[len("/fhir"):].split("/") if s]
        base = self._base()
        if not segments:
            if method == "GET" and "_getpages" in dict(params):
                return 200, self._page(base, query, params), {}
            raise FhirError(400, "This is the base URL of FHIR server. Unable to handle this request, as it does not contain a resource type or operation name.")
        if segments == ["metadata"] and method == "GET":
            return 200, capability_statement(base + "/"), {}
        resource_type = segments[0]
        if resource_type not in REGISTRY:
            raise FhirError(404, f"HAPI-0302: Unknown resource type '{resource_type}' - Server knows how to handle: [{', '.join(REGISTRY)}]")
        store = self.server.store
        if len(segments) == 1 and method == "GET":
            return 200, self._search(base, resource_type, params), {}
        if len(segments) == 1 and method == "POST":
            stored = store.create(_parse_body(resource_type, body or b""))
            location = f"{base}/{resource_type}/{stored['id']}/_history/1"
            return 201, stored, {"Location": location, "Content-Location": location, "ETag": 'W/"1"'}
        if len(segments) == 2 and method == "GET":
            resource = store.read(resource_type, segments[1])
            if resource is None:
                raise FhirError(404, f"HAPI-2001: Resource {resource_type}/{segments[1]} is not known")
            return 200, resource, {"ETag": f'W/"{resource.get("meta", {}).get("versionId", "1")}"'}
        raise FhirError(405 if len(segments) <= 2 else 400, f"{method} {path} is not supported by this server (read, search and create only)")

    def _search(self, base: str, resource_type: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        store = self.server.store
        query = parse_query(resource_type, params)
        seqs = store.search(query)
        links = [("self", self_link(base, resource_type, params))]
        has_next = 0 < query.count < len(seqs)
        if has_next:
            search_id = self.server.paged.add(_PagedSearch(seqs, query.count, query.total_mode))
            links.append(("next", page_link(base, search_id, query.count, query.count, _format(params))))
        total = _total(len(seqs), has_next, query.total_mode)
        return searchset(base, store.fetch(seqs[: query.count]), links, total)

    def _page(self, base: str, query: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        values = dict(params)
        search_id = values["_getpages"]
        search = self.server.paged.get(search_id)
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
        return searchset(base, self.server.store.fetch(search.seqs[offset : offset + count]), links, total)

    def _send(self, status: int, text: str, headers: dict[str, str]) -> None:
        data = text.encode("utf-8")
        try:
            self.send_response(status, "")
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away before the answer to %s", self.path)


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


def _parse_body(resource_type: str, body: bytes) -> dict[str, Any]:
    """The POSTed resource, or 400 with HAPI's wording for unparsable or mistyped bodies."""
    try:
        resource = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FhirError(400, f"HAPI-0450: Failed to parse request body as JSON resource. Error was: {exc}") from None
    if not isinstance(resource, dict):
        raise FhirError(400, "HAPI-0450: Failed to parse request body as JSON resource. Error was: the body is not a JSON object")
    found = resource.get("resourceType")
    if found != resource_type:
        raise FhirError(400, f'Incorrect resource type found, expected "{resource_type}" but found "{found}"')
    return resource


class _FhirHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], store: FhirStore) -> None:
        self.store = store
        self.paged = _PagedSearches()
        super().__init__(address, _Handler)


class FhirServer:
    """An embedded FHIR server over a built database; a context manager (or start()/stop()).

    Each instance has its own writes layer, so parallel workers can share one database file.
    """

    def __init__(self, db_path: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.port = port
        self._httpd: _FhirHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Open the database and serve in a background thread; port 0 picks a free port."""
        if self._httpd is not None:
            return self
        store = FhirStore(self.db_path)
        try:
            self._httpd = _FhirHTTPServer((self.host, self.port), store)
        except OSError:
            store.close()
            raise
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fhir-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the database and delete the writes layer."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd.store.close()
        self._httpd = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the `serve` command)."""
        self.start()
        assert self._thread is not None
        try:
            self._thread.join()
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
        if self._httpd is None:
            raise RuntimeError("FhirServer is not started; use it as a context manager or call start()")
        return self._httpd.store

    def reset_writes(self) -> None:
        """Drop every resource POSTed so far (one task's writes never reach the next)."""
        self.store.reset_writes()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def embedded_server(
    seed: int = 0, scale: str = "small", seating: Seating | None = None, cache_dir: Path | str | None = None
) -> FhirServer:
    """A (not yet started) server over the cached synthetic EHR for this seed/scale/seating."""
    # Imported here: medbench.ehr.cache imports medbench.fhir.store, so a module-level import
    # would make `import medbench.fhir` circular.
    from medbench.ehr.cache import ensure_database

    return FhirServer(ensure_database(seed=seed, scale=scale, seating=seating, cache_dir=cache_dir))
