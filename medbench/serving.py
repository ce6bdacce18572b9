"""The HTTP server under the harness's own endpoints (embedded FHIR server, built-in models).

Both endpoints are WSGI apps hosted by waitress in a background thread. Read timeouts, body and
header limits and a bound on open connections are a web server's job, and waitress does them
by design: one I/O thread buffers every request (headers and body) before a worker thread sees
it, so a slow or stalled client costs a socket and a buffer, never a worker; an idle keep-alive
connection is closed after `keepalive_timeout_s`; a declared body over `max_body_bytes` is refused
as soon as the headers arrive, before any of it is read; and past `connection_limit` open
connections new ones wait in the listen backlog. On top of waitress this module adds two small
hooks: its own error answers rendered by the app's renderer (a FHIR server answers 413 with an
OperationOutcome, not with waitress's text page), and a check that drops a request stalled
mid-way for `idle_timeout_s` or still incomplete `request_timeout_s` after its first byte (a
client that trickles a byte at a time never looks idle).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

# "Task queue depth is N" is logged at WARNING whenever requests wait for a worker, which is
# routine with many attempts in flight; it would print into benchmark runs.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

# (status code, reason phrase, detail) -> (status line text, headers, body)
ErrorRenderer = Callable[[int, str, str], tuple[str, list[tuple[str, str]], bytes]]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


@dataclass(frozen=True)
class ServerLimits:
    """What one server accepts; the defaults suit a loopback benchmark server."""

    threads: int = 8  # worker threads running the app
    connection_limit: int = 512  # open connections; more wait in the listen backlog
    max_body_bytes: int = 1024 * 1024  # larger request bodies are answered 413
    max_header_bytes: int = 64 * 1024  # larger header blocks are answered 431
    idle_timeout_s: int = 30  # a request stalled this long mid-way (no bytes arriving) is dropped
    request_timeout_s: int = 60  # a request still incomplete this long after its first byte is dropped
    # An idle keep-alive connection (between requests) is closed after this long. Much longer
    # than the stall timeout: a client that reuses a connection just as the server closes it
    # sees a reset, and an agent's connection idles for a whole model call between FHIR calls.
    keepalive_timeout_s: int = 300


class _ErrorTask(ErrorTask):
    """Waitress's own refusals (400 unparsable request, 413, 431), rendered by the app."""

    def execute(self) -> None:
        error = self.request.error
        status, headers, body = self.channel.server.render_error(error.code, error.reason, str(error.body))
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _ErrorTask
    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.time()
        return super().received(data)


class _Server(TcpWSGIServer):
    channel_class = _Channel

    def __init__(self, app: WsgiApp, render_error: ErrorRenderer, limits: ServerLimits, **adjustments: Any) -> None:
        self.render_error = render_error
        self.limits = limits
        super().__init__(app, **adjustments)

    def maintenance(self, now: float) -> None:
        """Waitress closes idle keep-alive connections (its `channel_timeout`); this also drops
        connections whose request is incomplete and stalled for `idle_timeout_s`, or still
        incomplete `request_timeout_s` after it began. No worker is busy with such a request:
        nothing is lost by closing it."""
        super().maintenance(now)
        stalled, started = now - self.limits.idle_timeout_s, now - self.limits.request_timeout_s
        for channel in list(self.active_channels.values()):
            if channel.request is None or channel.requests:
                continue
            if channel.last_activity < stalled or channel.request_started < started:
                channel.will_close = True


class BackgroundServer:
    """A WSGI app served by waitress on a background thread, with `limits`."""

    def __init__(
        self,
        app: WsgiApp,
        render_error: ErrorRenderer,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits | None = None,
        ident: str = "medbench",
    ) -> None:
        self.limits = limits or ServerLimits()
        self._app = app
        self._render_error = render_error
        self._host = host
        self._requested_port = port
        self._ident = ident
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        if self._server is not None:
            return
        limits = self.limits
        self._server = _Server(
            self._app,
            self._render_error,
            limits,
            host=self._host,
            port=self._requested_port,
            threads=limits.threads,
            connection_limit=limits.connection_limit,
            max_request_body_size=limits.max_body_bytes,
            max_request_header_size=limits.max_header_bytes,
            channel_timeout=limits.keepalive_timeout_s,
            cleanup_interval=max(
                1, min(limits.idle_timeout_s, limits.request_timeout_s, limits.keepalive_timeout_s) // 2
            ),
            ident=self._ident,
            expose_tracebacks=False,
            asyncore_use_poll=True,  # select() fails past 1,024 descriptors; poll has no such cap
        )
        self._thread = threading.Thread(target=self._server.run, name=f"{self._ident}-{self.port}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not started")
        return int(self._server.effective_port)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        """Client connections the server holds open now (what `connection_limit` bounds)."""
        server = self._server
        return 0 if server is None else len(server.active_channels)

    def stop(self) -> None:
        """Close every connection and the listening socket (on the I/O thread, where waitress
        expects it), then stop the worker threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        from waitress import wasyncore

        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:
            # The wake-up pipe is gone (seen once under load in the test suite, EBADF): close from
            # here; the I/O thread's poll times out on an empty map and its loop ends.
            wasyncore.close_all(server._map)
        if thread is not None:
            thread.join(timeout=10)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        self._server = None
        self._thread = None
