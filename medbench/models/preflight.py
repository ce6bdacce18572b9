"""The one check before the first task: does anything answer at the model endpoint?

A dropped connection on this single request must not fail every test of the session, so the
probe is retried (urllib3's own retry policy, with backoff) before the endpoint is declared
unreachable. Any HTTP answer, even 401 or 404, counts as reachable: the point is to catch a
wrong --base-url or a server that is not running, not to judge the endpoint.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

PROBE_PATH = "/models"


def probe_endpoint(base_url: str, *, timeout: float = 15.0, retries: int = 3, backoff_s: float = 0.5) -> None:
    """GET `<base_url>/models` once, retrying connection failures; raises requests.RequestException
    when nothing answered after `retries` retries."""
    policy = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=0,
        redirect=0,
        other=retries,
        backoff_factor=backoff_s,
        raise_on_status=False,
        allowed_methods=frozenset({"GET"}),
    )
    with requests.Session() as session:
        adapter = HTTPAdapter(max_retries=policy)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.get(base_url.rstrip("/") + PROBE_PATH, timeout=timeout, allow_redirects=False)
