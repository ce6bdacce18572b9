"""Fixtures shared by the library's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.fhir_sample import sample_resources
from medbench.fhir import build_database

# Helper modules that test modules both import from and load as plugins (their fixtures).
pytest.register_assert_rewrite("helpers.state_fixtures")


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made FHIR sample (tests/helpers/fhir_sample.py) built once per test process; servers open it read-only."""
    path = tmp_path_factory.mktemp("fhir") / "sample.sqlite"
    build_database(path, sample_resources())
    return path
