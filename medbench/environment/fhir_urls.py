"""Which model-written URLs may reach the FHIR server: only those under the display base.

The model writes absolute URLs (`GET http://localhost:8080/fhir/Patient?...`); the harness
must never turn a reply into a request anywhere else (another port on the host, a cloud
metadata address, the model endpoint itself). ``route`` is the single decision, pure and
side-effect free: it reads the URL the way `requests` prepares it and the way urllib3 connects
with it, and either returns the part after the base (which the gateway appends to the real
base, so the connection can only go to the FHIR server) or a refusal saying why.

Refused: another scheme, host or port; user info (`http://localhost:8080@127.0.0.1:9/`);
paths outside the base path, including dot segments in any spelling (`..`, `%2e%2e`,
`%252e%252e`, `..;`), backslashes anywhere (raw, or `%5c` in the path: some servers read them as `/`), and
fragments. URLs that `requests` cannot prepare at all are not decided here: the gateway keeps
requests' own error text for them, as upstream shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

import requests
from urllib3.util import parse_url

_DEFAULT_PORTS = {"http": 80, "https": 443}
# How often a path is percent-decoded when looking for dot segments and backslashes: a
# server, proxy or framework that decodes twice must not see a traversal either.
_DECODE_ROUNDS = 3


@dataclass(frozen=True)
class Allowed:
    """The request may go: ``suffix`` is what follows the base without its trailing slash.

    ``suffix`` is `""`, or starts with `/` or `?` (HAPI's paging links drop the base's
    trailing slash: `.../fhir?_getpages=...`). The real URL is ``real_base.rstrip("/") + suffix``.
    """

    suffix: str


@dataclass(frozen=True)
class Refused:
    """The request must not be sent; ``reason`` says what was wrong with the URL."""

    url: str
    reason: str

    @property
    def message(self) -> str:
        """The error text the model sees after upstream's "Error in sending the GET request: "."""
        return f"Refused: {self.url} is not under the FHIR base URL ({self.reason}); only that server can be queried"


Decision = Allowed | Refused


def prepare(url: str) -> str:
    """The URL exactly as `requests` would send it (quoting, IDNA, lower-case scheme and host).

    Raises what requests raises for URLs it cannot prepare (MissingSchema, InvalidURL, ...).
    """
    return requests.Request("GET", url).prepare().url or ""


def route(url: str, display_base: str) -> Decision:
    """Decide whether a model-written URL (already prepared by requests, or raw) is under ``display_base``."""
    base = urlsplit(prepare(display_base))
    base_path = base.path if base.path.endswith("/") else base.path + "/"
    prepared = prepare(url)
    parts = urlsplit(prepared)
    connected = parse_url(prepared)  # what urllib3 opens a connection to

    def refused(reason: str) -> Refused:
        return Refused(url, reason)

    if "\\" in url:
        # Browsers and some servers read a backslash as `/`: `localhost:8080\@host` names `host`.
        return refused("it has a backslash")
    if parts.fragment or "#" in prepared:
        return refused("it has a fragment (#)")
    if (connected.scheme or "").lower() != base.scheme.lower() or parts.scheme.lower() != base.scheme.lower():
        return refused(f"its scheme is {parts.scheme or 'missing'!r}, not {base.scheme!r}")
    if "@" in parts.netloc or connected.auth is not None:
        return refused("it carries user info (user@host)")
    if (connected.host or "").lower() != (base.hostname or "").lower() or _port(parts) != _port(base):
        return refused(f"its host is {parts.netloc!r}, not {base.netloc!r}")
    path = parts.path
    if not (path.startswith(base_path) or path == base_path.rstrip("/")):
        return refused(f"its path {path!r} is not under {base_path!r}")
    problem = _path_problem(path)
    if problem is None and (connected.path or "") != path:
        problem = "its path would be rewritten before sending"
    if problem is not None:
        return refused(problem)
    suffix = path[len(base_path.rstrip("/")) :]
    if parts.query or prepared.endswith("?"):
        suffix += "?" + parts.query
    return Allowed(suffix)


def _port(parts: SplitResult) -> int | None:
    try:
        port = parts.port
    except ValueError:
        return None
    return port if port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())


def _path_problem(path: str) -> str | None:
    """Dot segments or backslashes in any percent-encoding depth; None when the path is clean."""
    decoded = path
    for _ in range(_DECODE_ROUNDS):
        if "\\" in decoded or "%5c" in decoded.lower():
            return "its path has a backslash"
        for segment in decoded.split("/"):
            if segment.split(";", 1)[0] in (".", ".."):
                return "its path has a dot segment (. or ..)"
        once = unquote(decoded)
        if once == decoded:
            return None
        decoded = once
    return "its path is percent-encoded too many times over"
