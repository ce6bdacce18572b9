"""An ASGI app served by uvicorn in a background thread: the MCP host and the built-in A2A agents.

`start()` returns once the socket listens (so a port of 0 can be read back); `stop()` asks
uvicorn to finish what is in flight and waits for the thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import uvicorn

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class UvicornThread:
    """One uvicorn server on `host:port` (0: a free port) in a daemon thread."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "medbench-asgi",
        lifespan: Literal["auto", "on", "off"] = "on",
    ) -> None:
        self.host = host
        self._wanted_port = port
        self._name = name
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", lifespan=lifespan, access_log=False, interface="asgi3"
            )
        )
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self._name} is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> UvicornThread:
        self._thread = threading.Thread(target=self._server.run, name=self._name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:  # uvicorn offers no event to wait on
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"{self._name} could not listen on {self.host}:{self._wanted_port}")
            time.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            self._thread = None

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
