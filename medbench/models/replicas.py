"""Replicas of one model: several base URLs serving the same model, one run's calls spread over them.

`ReplicaPool` decides where the next call goes: the available replica with the fewest calls
in flight (ties: the one picked least often, so an idle run alternates). A replica that fails
-- refuses the connection, times out, drops it, or answers 429 / 5xx -- is taken out for a
cool-down that doubles with each failure in a row (capped), then tried again with a single
call before it gets more. When every replica is out, the one that comes back first is tried.

`ReplicaTransport` is an httpx transport for the openai SDK: the SDK talks to the first
replica's URL (the canonical one, which is also what cassettes record, so a recording never
depends on which replica answered), and the transport rewrites each request to the chosen
replica. A refused connection never reached a model, so it is sent to the next replica at
once; any other failure is returned to the client, whose retry policy (counted, with backoff)
sends the call again -- elsewhere, since the failed replica is out.

Each attempt counts which replica served its calls (`counting_calls`, per thread); the
runs.jsonl line keeps the counts and summary.json adds them up.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx2

COOLDOWN_S = 2.0
MAX_COOLDOWN_S = 60.0
# Answers that say "this replica, not this request": taken out for a while.
FAILING_STATUSES = frozenset({429, 500, 502, 503, 504})


def replica_label(base_url: str) -> str:
    """A replica's name in results: its URL without user info or query string (no secrets)."""
    parts = urlsplit(base_url)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass
class Replica:
    """One base URL and what the pool knows of it."""

    base_url: str
    label: str
    in_flight: int = 0
    picks: int = 0
    served: int = 0
    failures: int = 0
    failures_in_a_row: int = 0
    out_until: float = 0.0


@dataclass
class CallTally:
    """The calls one attempt sent, by replica label: answered, and failed."""

    served: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def fields(self) -> dict[str, dict[str, int]]:
        """The runs.jsonl fields: `replica_calls` (answered calls per replica), `replica_failures` when any failed."""
        fields = {"replica_calls": dict(sorted(self.served.items()))}
        if self.failed:
            fields["replica_failures"] = dict(sorted(self.failed.items()))
        return fields


_TALLY: contextvars.ContextVar[CallTally | None] = contextvars.ContextVar("medbench_replica_tally", default=None)


@contextmanager
def counting_calls() -> Iterator[CallTally]:
    """Count the replica calls made in this thread (one attempt) until the block ends."""
    tally = CallTally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


class ReplicaPool:
    """Picks a replica per call and keeps each one's health; safe across threads."""

    def __init__(
        self,
        base_urls: Sequence[str],
        cooldown_s: float = COOLDOWN_S,
        max_cooldown_s: float = MAX_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_urls:
            raise ValueError("a replica pool needs at least one base URL")
        self.replicas = [Replica(url, replica_label(url)) for url in base_urls]
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()

    def acquire(self, excluding: frozenset[int] = frozenset()) -> tuple[int, Replica] | None:
        """The replica for the next call (counted in flight), or None when all are excluded."""
        with self._lock:
            now = self._clock()
            candidates = [(i, r) for i, r in enumerate(self.replicas) if i not in excluding]
            if not candidates:
                return None
            ready = [(i, r) for i, r in candidates if self._available(r, now)]
            if ready:
                index, replica = min(ready, key=lambda item: (item[1].in_flight, item[1].picks, item[0]))
            else:  # every one is out: try the one that comes back first
                index, replica = min(candidates, key=lambda item: (item[1].out_until, item[0]))
            replica.in_flight += 1
            replica.picks += 1
            return index, replica

    def release(self, replica: Replica, ok: bool) -> None:
        """The call ended: a success brings the replica back, a failure takes it out for a while."""
        with self._lock:
            replica.in_flight -= 1
            if ok:
                replica.served += 1
                replica.failures_in_a_row = 0
                replica.out_until = 0.0
            else:
                replica.failures += 1
                replica.failures_in_a_row += 1
                pause = min(self.max_cooldown_s, self.cooldown_s * 2 ** (replica.failures_in_a_row - 1))
                replica.out_until = self._clock() + pause
        tally = _TALLY.get()
        if tally is not None:
            counts = tally.served if ok else tally.failed
            counts[replica.label] = counts.get(replica.label, 0) + 1

    @staticmethod
    def _available(replica: Replica, now: float) -> bool:
        if replica.failures_in_a_row == 0:
            return True
        # Back from a cool-down: one trial call at a time until one succeeds.
        return now >= replica.out_until and replica.in_flight == 0


class ReplicaTransport(httpx2.BaseTransport):
    """Sends each request of the canonical base URL to the replica the pool picks."""

    def __init__(self, pool: ReplicaPool, canonical_base: str, inner: httpx2.BaseTransport | None = None) -> None:
        self.pool = pool
        self._canonical = httpx2.URL(canonical_base.rstrip("/"))
        self._inner = inner or httpx2.HTTPTransport(
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        tried: set[int] = set()
        last_error: httpx2.ConnectError | None = None
        while True:
            picked = self.pool.acquire(frozenset(tried))
            if picked is None:  # every replica refused the connection: the client's retry policy decides
                assert last_error is not None
                raise last_error
            index, replica = picked
            tried.add(index)
            routed = self._route(request, replica.base_url)
            try:
                response = _read_whole(self._inner.handle_request(routed))
            except httpx2.ConnectError as error:  # never reached the model: the next replica, at once
                self.pool.release(replica, ok=False)
                last_error = error
                continue
            except BaseException:
                self.pool.release(replica, ok=False)
                raise
            self.pool.release(replica, ok=response.status_code not in FAILING_STATUSES)
            return response

    def _route(self, request: httpx2.Request, base_url: str) -> httpx2.Request:
        base = httpx2.URL(base_url.rstrip("/"))
        path = request.url.raw_path.decode("ascii")
        prefix = self._canonical.raw_path.decode("ascii")
        suffix = path[len(prefix) :] if path.startswith(prefix) else path
        url = base.copy_with(raw_path=(base.raw_path.decode("ascii") + suffix).encode("ascii"))
        if url == request.url:
            return request
        headers = request.headers.copy()
        headers["Host"] = url.netloc.decode("ascii")
        return httpx2.Request(
            request.method, url, headers=headers, stream=request.stream, extensions=request.extensions
        )

    def close(self) -> None:
        self._inner.close()


def _read_whole(response: httpx2.Response) -> httpx2.Response:
    """The response with its whole raw body read here: a replica that goes away mid-answer has not
    served the call (its failure is counted against it), and layers above (an attempt's cassette)
    get a body they can read again."""
    try:
        raw = response.content if response.is_stream_consumed else b"".join(response.iter_raw())
    finally:
        response.close()
    return httpx2.Response(
        response.status_code, headers=response.headers, stream=httpx2.ByteStream(raw), extensions=response.extensions
    )
