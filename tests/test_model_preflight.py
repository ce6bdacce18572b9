"""The endpoint preflight: one GET /models, retried when the connection drops, any HTTP answer accepted."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from medbench.models.preflight import probe_endpoint


class DroppingEndpoint(BaseHTTPRequestHandler):
    """Drops the first `drops` connections without a word, then answers 404 (still an answer)."""

    drops = 0
    seen = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).seen += 1
        if type(self).drops > 0:
            type(self).drops -= 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def endpoint():
    DroppingEndpoint.drops, DroppingEndpoint.seen = 0, 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), DroppingEndpoint)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


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
