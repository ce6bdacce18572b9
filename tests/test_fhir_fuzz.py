"""A bounded fuzz run (seconds): random and adversarial requests never get a 5xx, never hang,
and leave the server answering normally."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from medbench.fhir import FhirServer
from medbench.serving import ServerLimits
from medbench.testing.hostile_http import fuzz_requests, run_fuzz

FAST_TIMEOUTS = ServerLimits(idle_timeout_s=1, request_timeout_s=2, max_body_bytes=256 * 1024)


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzzed_requests_get_no_5xx_and_no_hang(sample_db: Path, seed: int) -> None:
    with FhirServer(sample_db, limits=FAST_TIMEOUTS) as server:
        report = run_fuzz(server.host, server.port, seed=seed, count=300, timeout_s=20)
        assert report.server_errors == []
        assert report.hangs == []
        assert report.requests == 300 and sum(report.statuses.values()) > 250
        assert requests.get(server.base_url + "Patient?identifier=S0000001", timeout=20).json()["total"] == 1


def test_the_fuzzer_covers_the_hostile_classes() -> None:
    """The generator really produces what the issue lists (so a green fuzz run means something)."""
    summaries = " ".join(request.summary for request in fuzz_requests(seed=0, count=600))
    for kind in ("nested 100k", "5000-digit integer", "random bytes", "truncated JSON", "mutated"):
        assert kind in summaries
    assert any(request.short_body for request in fuzz_requests(seed=0, count=600))
