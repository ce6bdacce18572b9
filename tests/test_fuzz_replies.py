"""Fuzz: random and adversarial model replies through the real loop, graders and writer (bounded, seconds).

`scripts/fuzz_replies.py` runs the same campaign with 10,000 replies and prints the figures.
"""

from __future__ import annotations

import random

import pytest

from medbench.ehr.cache import ensure_database
from medbench.ehr.population import build_population
from medbench.fhir import FhirServer
from medbench.tasks import load_task_set
from medbench.testing.hostile_replies import hostile_reply, off_base_urls, run_campaign


@pytest.fixture(scope="module")
def fhir_base():
    with FhirServer(ensure_database(0, "small")) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def task_set():
    return load_task_set("generated", population=build_population(scale="small"))


def test_hostile_replies_end_in_recorded_attempts_and_never_leave_the_fhir_base(fhir_base, task_set):
    figures = run_campaign(400, fhir_base, task_set, seed=11)
    assert (figures.crashes, figures.unrecorded_attempts, figures.off_base_requests) == (0, 0, 0), figures.examples
    assert figures.replies >= 400 and figures.refused_requests > 0
    assert {"completed", "agent_invalid_action"} <= set(figures.statuses)


def test_hostile_replies_over_http_through_the_real_client_end_in_recorded_attempts(fhir_base, task_set):
    figures = run_campaign(150, fhir_base, task_set, seed=12, via_endpoint=True)
    assert (figures.crashes, figures.unrecorded_attempts, figures.off_base_requests) == (0, 0, 0), figures.examples
    assert figures.replies >= 150 and figures.refused_requests > 0


def test_the_generator_aims_at_the_trap_in_many_spellings_and_sends_lone_surrogates():
    rng = random.Random(0)
    off_base = off_base_urls("http://127.0.0.1:9/", "http://127.0.0.1:8/fhir/")
    replies = [hostile_reply(rng, off_base) for _ in range(2000)]
    assert sum(reply.startswith("GET http://localhost:8080@") for reply in replies) > 0
    assert sum(any(s in reply for s in ("\ud800", "\udbff", "\udc00", "\udfff")) for reply in replies) > 100
    assert sum(reply.startswith("FINISH([[[[") for reply in replies) > 0
