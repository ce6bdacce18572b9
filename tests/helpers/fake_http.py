"""Scripted fake HTTP endpoints for the tests, on pytest-httpserver (a real HTTP server on loopback).

One helper instead of a hand-written `BaseHTTPRequestHandler` per test file: a test module starts a
server (`serving()`, or pytest-httpserver's own `httpserver` fixture), routes requests to a plain
function `handler(request) -> Response`, and builds answers with the functions below:

- `chat_completion(...)`: the JSON body of an OpenAI chat completion (content or tool calls, usage);
- `json_response(...)`: a JSON answer with any status and headers;
- `fhir_response(...)`: a FHIR answer as HAPI sends it -- `application/fhir+json`, and by default
  the *empty* reason phrase HAPI puts on its status lines (`HTTP/1.1 400 `), which the official
  agent loop copies into its error text ("400 Client Error:  for url: ...");
- `drop_connection(request)`: close the connection without an answer (a dropped connection);
- `static_files(folder)`: a folder served as a static web site (the docs site, an upstream mirror);
- `Recorder`: the requests a fake received (method, path, headers, JSON body), in order.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.exceptions import NotFound
from werkzeug.utils import send_from_directory

EVERY_PATH = re.compile(".*")
FHIR_JSON = "application/fhir+json;charset=UTF-8"

Handler = Callable[[Request], Response]


@contextmanager
def serving(handler: Handler | None = None, *, method: str = "") -> Iterator[HTTPServer]:
    """A started server on 127.0.0.1 (a free port); every request (or those of `method`) goes to `handler`."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        if handler is not None:
            route(server, handler, method=method)
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def route(server: HTTPServer, handler: Handler, *, method: str = "") -> None:
    """Send every request (of `method`, when given) to `handler`, as often as it comes."""
    server.expect_request(EVERY_PATH, method=method or "__ALL").respond_with_handler(handler)


def base_url(server: HTTPServer, path: str = "") -> str:
    """`http://127.0.0.1:<port>/<path>`."""
    return server.url_for("/" + path.lstrip("/"))


class StatusLine(Response):
    """A response whose status line carries exactly `reason` (werkzeug would add the standard phrase)."""

    def __init__(self, body: bytes | str | Iterable[bytes], status: int, reason: str, **kwargs: Any) -> None:
        super().__init__(body, status=status, **kwargs)
        self.status_line = f"{status} {reason}"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        app_iter, _, headers = self.get_wsgi_response(environ)
        start_response(self.status_line, headers)
        return app_iter


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {}, content_type="application/json")


def fhir_response(
    body: bytes | str, status: int = 200, *, reason: str = "", content_type: str = FHIR_JSON, **kwargs: Any
) -> Response:
    """A FHIR server's answer with HAPI's empty reason phrase unless `reason` is given."""
    return StatusLine(body, status, reason, content_type=content_type, **kwargs)


def chat_completion(
    content: str | None = "FINISH([])",
    *,
    model: str = "m",
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The JSON body of a chat completion with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def static_files(folder: Path, requested: list[str] | None = None) -> Handler:
    """Serve the files under `folder` (`index.html` for a folder), 404 for anything else; note each target."""

    def answer(request: Request) -> Response:
        if requested is not None:
            requested.append(raw_target(request))
        path = request.path.lstrip("/")
        if path == "" or path.endswith("/"):
            path += "index.html"
        try:
            return send_from_directory(folder, path, request.environ)
        except NotFound:
            return Response(b"", status=404)

    return answer


def drop_connection(request: Request) -> Response:
    """Close the connection without a word; the client sees the connection dropped."""
    connection: socket.socket = request.environ["werkzeug.socket"]
    connection.shutdown(socket.SHUT_RDWR)
    return Response(b"", status=200)


def body_then_close(
    first: bytes, *, announced: int, status: int = 200, content_type: str = "application/json"
) -> Response:
    """Send `first` under a Content-Length of `announced`, then close: a body cut short (announced > len(first))
    or a complete but truncated document (announced == len(first))."""

    def chunks(request_socket: socket.socket) -> Iterator[bytes]:
        yield first
        request_socket.shutdown(socket.SHUT_RDWR)

    class Cut(Response):
        def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            start_response(f"{status} OK", [("Content-Type", content_type), ("Content-Length", str(announced))])
            return chunks(environ["werkzeug.socket"])

    return Cut()


def raw_target(request: Request) -> str:
    """The request target as sent (`/fhir/Patient?name=Zo%C3%AB`), not decoded."""
    return str(request.environ.get("RAW_URI") or request.full_path.rstrip("?"))


class Recorder:
    """What a fake received, in order: each request as a dict (method, path with query, headers, body)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> dict[str, Any]:
        raw = request.get_data()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        seen = {
            "method": request.method,
            "path": raw_target(request),
            "headers": {key.lower(): value for key, value in request.headers.items()},
            "body": body,
            "raw": raw,
        }
        with self.lock:
            self.requests.append(seen)
        return seen

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
