"""The agent's window on the FHIR server: the model sees one stable base URL, requests go to the real one.

Upstream transcripts show `http://localhost:8080/fhir/`; our embedded server listens on a free
port. The gateway rewrites display URLs to the real base, sends the display host in the Host
header (so the server's own links show it too), and writes bodies and error texts exactly as
the upstream harness (plain `requests`) would have shown them for the display URL. Transcripts
therefore look like upstream ones and stay byte-stable between runs, which replay relies on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests

from medbench.environment import fhir_urls

DEFAULT_DISPLAY_BASE = "http://localhost:8080/fhir/"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class GatewayResponse:
    """What one request gave: `text` is the body as sent; `error_message` upstream's error text."""

    ok: bool
    status: int | None
    text: str
    error_message: str | None
    # True when the URL was not under the display base and nothing was sent (medbench.environment.fhir_urls).
    refused: bool = False


class FhirGateway:
    """Sends the model's FHIR requests; give `display_base=real_base` for a server the model may see as is."""

    def __init__(
        self,
        real_base: str,
        display_base: str = DEFAULT_DISPLAY_BASE,
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
        adapter: Any = None,
    ) -> None:
        self.real_base = _normalized_base(real_base)
        self.display_base = _normalized_base(display_base)
        self.timeout = timeout
        self._real = urlsplit(self.real_base)
        self._display = urlsplit(self.display_base)
        self._session = requests.Session()
        # Proxy variables must not capture loopback traffic to the embedded server.
        self._session.trust_env = self._real.hostname not in _LOOPBACK_HOSTS
        if headers:
            self._session.headers.update(headers)
        if adapter is not None:
            # A cassette adapter (replay, recording) answers or records every request of this gateway.
            self._session.mount("http://", adapter)
            self._session.mount("https://", adapter)

    @property
    def is_identity(self) -> bool:
        return self.real_base == self.display_base

    def get(self, url: str) -> GatewayResponse:
        """GET a display URL, as upstream's `requests.get(url)` + `raise_for_status()`."""
        return self._send(requests.Request("GET", url))

    def post(self, url: str, payload: Any) -> GatewayResponse:
        """POST a JSON payload to a display URL (execute post-mode; upstream never sends POSTs)."""
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError) as error:
            # A lone surrogate (not encodable as UTF-8) or nesting too deep to serialise: nothing is sent.
            return GatewayResponse(ok=False, status=None, text="", error_message=f"{type(error).__name__}: {error}")
        headers = {"Content-Type": "application/fhir+json; charset=UTF-8"}
        return self._send(requests.Request("POST", url, data=body, headers=headers))

    def to_real(self, url: str) -> str:
        """Map a display URL to the real server; URLs of other hosts are left alone (and never sent)."""
        return _rebase(url, self.display_base, self._display, self.real_base, self._real)

    def to_display(self, url: str) -> str:
        """Map a real-server URL back to what the model sees."""
        return _rebase(url, self.real_base, self._real, self.display_base, self._display)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> FhirGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, request: requests.Request) -> GatewayResponse:
        try:
            prepared = self._session.prepare_request(request)
            display_url = prepared.url or ""
            # Only URLs under the display base are sent, and only ever to the real base (fhir_urls).
            decision = fhir_urls.route(display_url, self.display_base)
            if isinstance(decision, fhir_urls.Refused):
                return GatewayResponse(ok=False, status=None, text="", error_message=decision.message, refused=True)
            real_url = self.real_base.rstrip("/") + decision.suffix
            if real_url != display_url:
                prepared.url = real_url
                prepared.headers["Host"] = self._display.netloc
            settings = self._session.merge_environment_settings(real_url, {}, None, None, None)
            response = self._session.send(prepared, timeout=self.timeout, allow_redirects=False, **settings)
        except (requests.RequestException, ValueError, OSError, RecursionError) as error:
            return GatewayResponse(ok=False, status=None, text="", error_message=self._display_error(error))
        text = response.content.decode(_charset(response.headers.get("Content-Type", "")), errors="replace")
        response.url = self.to_display(response.url)
        if response.is_redirect:
            # A redirect could lead anywhere; it is shown as a failed request, never followed.
            message = f"{response.status_code} Redirect not followed for url: {response.url}"
            return GatewayResponse(ok=False, status=response.status_code, text=text, error_message=message)
        try:
            response.raise_for_status()
        except requests.HTTPError as error:
            return GatewayResponse(ok=False, status=response.status_code, text=text, error_message=str(error))
        return GatewayResponse(ok=True, status=response.status_code, text=text, error_message=None)

    def _display_error(self, error: Exception) -> str:
        """Connection errors name the real host and port; show the display ones, as upstream would."""
        message = str(error)
        if self.is_identity:
            return message
        replacements = (
            (self.real_base, self.display_base),
            (_pool_name(self._real), _pool_name(self._display)),
            (f"with url: {self._real.path}", f"with url: {self._display.path}"),
        )
        for real, display in replacements:
            message = message.replace(real, display)
        return message


def _normalized_base(base: str) -> str:
    """The base as requests writes it (lower-case host, quoting), always with one trailing slash."""
    prepared = requests.Request("GET", base).prepare().url or base
    return prepared if prepared.endswith("/") else prepared + "/"


def _rebase(url: str, from_base: str, from_parts: SplitResult, to_base: str, to_parts: SplitResult) -> str:
    if url.startswith(from_base):
        return to_base + url[len(from_base) :]
    bare = from_base.rstrip("/")
    if url.startswith(bare) and url[len(bare) : len(bare) + 1] in ("", "?", "#"):
        # HAPI's paging links drop the base's trailing slash: `.../fhir?_getpages=...`.
        return to_base.rstrip("/") + url[len(bare) :]
    origin = f"{from_parts.scheme}://{from_parts.netloc}"
    if url.startswith(origin + "/"):
        return f"{to_parts.scheme}://{to_parts.netloc}" + url[len(origin) :]
    return url


def _pool_name(parts: SplitResult) -> str:
    """How urllib3 names a connection pool in its error messages."""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"host='{parts.hostname}', port={port}"


def _charset(content_type: str) -> str:
    """The charset the server declared, else UTF-8 (FHIR's JSON encoding)."""
    header = Message()
    header["Content-Type"] = content_type
    charset = header.get_content_charset() or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset
