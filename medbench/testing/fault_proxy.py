"""A fault-injecting proxy for OpenAI-compatible endpoints: how the harness is tried against bad networks.

It forwards every request to an upstream endpoint, except that some requests get a fault instead
of (or cut out of) the upstream answer: a 429, a 5xx, a stall (no answer until the client gives
up), a dropped connection, or a 200 whose JSON body is cut mid-string. Which requests fail is
decided by a plan: `random_faults(rate, seed)` for campaigns (scripts/fault_injection_run.py),
or a fixed list for tests. Stdlib HTTP server on a free loopback port, like the reference server.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

RATE_LIMITED = "429"
SERVER_ERRORS = ("500", "502", "503")
STALL = "stall"
DROP = "drop"
TRUNCATE = "truncate"
FAULTS = (RATE_LIMITED, *SERVER_ERRORS, STALL, DROP, TRUNCATE)
# Faults a GET (the preflight `GET /models`) can meet: one without a body to cut or a status to ignore.
GET_FAULTS = (DROP,)

# A plan says, for each request (method, path), which fault it meets; None forwards it untouched.
FaultPlan = Callable[[str, str], "str | None"]


def random_faults(rate: float, seed: int = 0, kinds: Iterable[str] = FAULTS) -> FaultPlan:
    """Each request fails with probability `rate`, with a kind drawn evenly from `kinds`
    (5xx kinds share one draw between them, so every family weighs the same)."""
    rng = random.Random(seed)
    lock = threading.Lock()
    families: list[tuple[str, ...]] = []
    for kind in kinds:
        family = SERVER_ERRORS if kind in SERVER_ERRORS else (kind,)
        if family not in families:
            families.append(family)

    def plan(method: str, path: str) -> str | None:
        with lock:
            if rng.random() >= rate:
                return None
            if method == "GET":
                return rng.choice(GET_FAULTS)
            return rng.choice(rng.choice(families))

    return plan


def scripted_faults(faults: Iterable[str | None]) -> FaultPlan:
    """The given faults for the first POSTs, in order, then none; GETs are forwarded untouched
    unless the script entry is prefixed `GET ` (e.g. `"GET drop"` drops the next GET)."""
    pending = list(faults)
    lock = threading.Lock()

    def plan(method: str, path: str) -> str | None:
        with lock:
            for index, fault in enumerate(pending):
                wants_get = fault is not None and fault.startswith("GET ")
                if wants_get == (method == "GET"):
                    del pending[index]
                    return fault.removeprefix("GET ") if fault else None
            return None

    return plan


class FaultProxy:
    """`with FaultProxy(upstream_base, plan) as proxy:` then point the client at `proxy.base_url`.

    `counts` tells how many faults of each kind were injected; `stall_s` bounds how long a stalled
    request holds its thread (it ends sooner when the proxy stops)."""

    def __init__(
        self, upstream_base: str, plan: FaultPlan, *, stall_s: float = 60.0, rewrite_model: str | None = None
    ) -> None:
        self.upstream = urlsplit(upstream_base.rstrip("/"))
        self.plan = plan
        self.stall_s = stall_s
        self.rewrite_model = rewrite_model
        self.counts: Counter[str] = Counter()
        self.requests = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.upstream.path}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _note(self, fault: str | None) -> None:
        with self._lock:
            self.requests += 1
            if fault is not None:
                self.counts[fault] += 1

    def _forward(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, str]:
        if body and self.rewrite_model:
            data = json.loads(body)
            data["model"] = self.rewrite_model
            body = json.dumps(data).encode()
        connection = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port or 80, timeout=self.stall_s
        )
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(), response.getheader("Content-Type", "application/json")
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET", None)

            def do_POST(self) -> None:
                self._serve("POST", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _serve(self, method: str, body: bytes | None) -> None:
                fault = proxy.plan(method, self.path)
                proxy._note(fault)
                if fault == STALL:
                    proxy._stopping.wait(proxy.stall_s)
                    self._drop()
                    return
                if fault == DROP:
                    self._drop()
                    return
                if fault is not None and fault != TRUNCATE:
                    message = (
                        "Rate limit reached" if fault == RATE_LIMITED else "upstream failure injected by the proxy"
                    )
                    self._send(
                        int(fault),
                        json.dumps({"error": {"message": message, "type": "injected"}}).encode(),
                        "application/json",
                    )
                    return
                headers = {
                    "Content-Type": self.headers.get("Content-Type", "application/json"),
                    "Authorization": self.headers.get("Authorization", ""),
                }
                try:
                    status, data, content_type = proxy._forward(method, self.path, body, headers)
                except (OSError, http.client.HTTPException) as error:
                    self._send(
                        502,
                        json.dumps({"error": {"message": f"proxy: upstream failed: {error}"}}).encode(),
                        "application/json",
                    )
                    return
                if fault == TRUNCATE:
                    data = _cut_mid_string(data)
                self._send(status, data, content_type)

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        return Handler


def _cut_mid_string(data: bytes) -> bytes:
    """The body cut inside its first long string value (the answer's content), else in half."""
    start = data.find(b'"content"')
    if start >= 0:
        opening = data.find(b'"', data.find(b":", start) + 1)
        if opening >= 0:
            return data[: opening + 1 + min(8, max(1, (len(data) - opening) // 4))]
    return data[: max(1, len(data) // 2)]
