"""Fixtures shared by the library's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.fhir_sample import sample_resources
from helpers.official import MISSING
from medbench.fhir import build_database

# Helper modules that test modules both import from and load as plugins (their fixtures).
pytest.register_assert_rewrite("helpers.state_fixtures")


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made FHIR sample (tests/helpers/fhir_sample.py) built once per test process; servers open it read-only."""
    path = tmp_path_factory.mktemp("fhir") / "sample.sqlite"
    build_database(path, sample_resources())
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (`CI=true`) a test skipped for want of the official assets fails: CI has them, so such a
    skip means a test that never ran while the run still looked green (see tests/helpers/official.py)."""
    report = yield
    if report.skipped and os.environ.get("CI") == "true" and MISSING in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"CI=true, yet this test was skipped: {report.longrepr}"
    return report
