"""One VCR cassette per task attempt, safe with many attempts in flight in one process.

vcrpy's `use_cassette` patches HTTP client classes process-wide: with two cassettes open in two
threads, the later one answers both threads' requests, and leaving them out of order restores
the wrong methods. So the runner never patches: each attempt gets its own vcrpy `Cassette`
(loaded, matched, filtered and saved by vcrpy, in the format of `medbench.cassettes.files`) and its own
HTTP clients whose transports consult that cassette -- an httpx transport for the openai SDK, a
requests adapter for the FHIR gateway. Nothing is shared between attempts, so nothing can mix.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from vcr import VCR
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest
from vcr.stubs import httpx_stubs

from medbench.cassettes import files as cassette_files
from medbench.scrubbing import NO_SECRETS, Scrubber

# Keys of vcrpy's merged configuration that `Cassette` itself takes.
_CASSETTE_KEYS = (
    "serializer",
    "persister",
    "match_on",
    "record_mode",
    "before_record_request",
    "before_record_response",
    "allow_playback_repeats",
    "drop_unused_requests",
)


@dataclass(frozen=True)
class CassettePlan:
    """What a session does with cassettes: `mode` is a vcrpy/pytest-recording record mode."""

    folder: Path
    mode: str
    scrubber: Scrubber = NO_SECRETS  # the session's secrets, masked wherever they occur in what is recorded

    @property
    def replaying(self) -> bool:
        return self.mode == "none"

    @property
    def recording(self) -> bool:
        return not self.replaying

    def path_of(self, test_id: str) -> Path:
        return self.folder / f"{test_id}{cassette_files.CASSETTE_SUFFIX}"


@dataclass
class AttemptCassette:
    """An open cassette and the problems a replay guard found once the attempt ended."""

    cassette: Cassette
    path: Path
    problems: list[str] = field(default_factory=list)

    def httpx_transport(self, inner: httpx2.BaseTransport | None = None) -> httpx2.BaseTransport:
        return _CassetteTransport(self.cassette, inner or httpx2.HTTPTransport(verify=_ssl_context()))

    def requests_adapter(self) -> HTTPAdapter:
        return _CassetteAdapter(self.cassette)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificate verification, trusting the environment), made once
    per process: making it loads the CA bundle, tens of milliseconds per attempt otherwise, even in
    a replay that never opens a connection. One context serves every connection and thread."""
    return httpx2.create_ssl_context()


def _vcr_config(mode: str, scrubber: Scrubber) -> dict[str, Any]:
    vcr = VCR()
    cassette_files.register(vcr)
    merged = vcr.get_merged_config(
        **cassette_files.vcr_config(scrubber), record_mode="new_episodes" if mode == "rewrite" else mode
    )
    return {key: merged[key] for key in _CASSETTE_KEYS}


@contextmanager
def attempt_cassette(plan: CassettePlan, test_id: str) -> Iterator[AttemptCassette]:
    """Load (or start) the attempt's cassette; save it when the attempt ends, then check a replay.

    In replay, a missing cassette raises FileNotFoundError before anything runs; afterwards a
    cassette that played nothing (traffic bypassed it) or played only part of its requests
    (the agent or a grader asked something else) is reported in `problems`.
    """
    path = plan.path_of(test_id)
    if plan.replaying and not path.exists():
        raise FileNotFoundError(
            f"no cassette {path} to replay: record it with --record-mode=once (or run live with --disable-recording)"
        )
    if plan.mode == "rewrite" and path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    opened = AttemptCassette(Cassette.load(path=str(path), **_vcr_config(plan.mode, plan.scrubber)), path)
    try:
        yield opened
    finally:
        opened.cassette._save()
    if plan.replaying:
        opened.problems.extend(_replay_problems(opened.cassette, path))


def _replay_problems(cassette: Cassette, path: Path) -> list[str]:
    total, unplayed = len(cassette), cassette_files.unplayed_interactions(cassette)
    if total and unplayed == total:
        return [
            f"replay of {path} played none of its {total} recorded requests: the traffic did not go through "
            "the cassette; the verdict is not a replay"
        ]
    if unplayed:
        return [
            f"replay diverged from {path}: {unplayed} of {total} recorded requests were never asked for "
            "(a changed prompt, agent or grader); re-record with --record-mode=rewrite"
        ]
    return []


class _CassetteTransport(httpx2.BaseTransport):
    """httpx transport for the openai SDK: vcrpy's own httpx stub logic, bound to one cassette."""

    def __init__(self, cassette: Cassette, inner: httpx2.BaseTransport) -> None:
        self._cassette = cassette
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx_stubs._vcr_handle_request(
            self._cassette, lambda _self, real: self._inner.handle_request(real), None, request, httpx2
        )

    def close(self) -> None:
        self._inner.close()


class _CassetteAdapter(HTTPAdapter):
    """requests adapter for the FHIR gateway: play from the cassette, else send and record."""

    def __init__(self, cassette: Cassette) -> None:
        super().__init__()
        self._cassette = cassette

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
        vcr_request = VcrRequest(request.method, request.url, body, dict(request.headers))
        if self._cassette.can_play_response_for(vcr_request):
            return _to_requests_response(request, self._cassette.play_response(vcr_request))
        if self._cassette.write_protected and self._cassette.filter_request(vcr_request):
            raise CannotOverwriteExistingCassetteException(cassette=self._cassette, failed_request=vcr_request)
        response = super().send(request, *args, **kwargs)
        self._cassette.append(
            vcr_request,
            {
                "status": {"code": response.status_code, "message": response.reason or ""},
                "headers": {name: [value] for name, value in response.headers.items()},
                "body": {"string": response.content},
            },
        )
        return response


def _to_requests_response(request: requests.PreparedRequest, recorded: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = recorded["status"]["code"]
    response.reason = recorded["status"].get("message") or ""
    response.headers = CaseInsensitiveDict(
        {name: values[-1] if isinstance(values, list) else values for name, values in recorded["headers"].items()}
    )
    body = recorded["body"]["string"]
    response._content = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    response.url = request.url or ""
    response.request = request
    response.encoding = None
    return response
