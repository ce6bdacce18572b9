"""The endpoint preflight: one GET /models, retried when the connection drops, any HTTP answer accepted."""

import socket

import pytest
import requests
from werkzeug import Request, Response

from helpers.fake_http import base_url, drop_connection, serving
from medbench.models.preflight import probe_endpoint


class DroppingEndpoint:
    """Drops the first `drops` connections without a word, then answers 404 (still an answer)."""

    drops = 0
    seen = 0

    @classmethod
    def answer(cls, request: Request) -> Response:
        cls.seen += 1
        if cls.drops > 0:
            cls.drops -= 1
            return drop_connection(request)
        return Response(b"", status=404)


@pytest.fixture
def endpoint():
    DroppingEndpoint.drops, DroppingEndpoint.seen = 0, 0
    with serving(DroppingEndpoint.answer) as server:
        yield base_url(server, "v1")


def test_a_dropped_preflight_connection_is_retried(endpoint):
    DroppingEndpoint.drops = 2
    probe_endpoint(endpoint, backoff_s=0)
    assert DroppingEndpoint.seen == 3


def test_any_http_answer_counts_as_reachable(endpoint):
    probe_endpoint(endpoint, backoff_s=0)
    assert DroppingEndpoint.seen == 1


def test_an_endpoint_that_keeps_dropping_is_unreachable_after_the_retries(endpoint):
    DroppingEndpoint.drops = 10
    with pytest.raises(requests.RequestException):
        probe_endpoint(endpoint, retries=2, backoff_s=0)
    assert DroppingEndpoint.seen == 3


def test_nothing_listening_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        probe_endpoint(f"http://127.0.0.1:{port}/v1", retries=1, backoff_s=0)
