"""ensure_database: one build per (generator version, schema, scale, seed, seating), shared by
concurrent workers, in the medbench cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from medbench.ehr import cache
from medbench.ehr.population import GENERATOR_VERSION
from medbench.ehr.seating import Seating
from medbench.fhir import FhirStore
from medbench.fhir.store import SCHEMA_VERSION

SEATING = Seating(mrns=(("S1234567", (4,)),), found=(), not_found=())


def test_file_name_carries_generator_schema_scale_seed_and_seating(tmp_path: Path) -> None:
    plain = cache.database_path(seed=3, scale="small", cache_dir=tmp_path)
    seated = cache.database_path(seed=3, scale="small", seating=SEATING, cache_dir=tmp_path)
    assert plain == tmp_path / "ehr" / f"ehr-{GENERATOR_VERSION}.db{SCHEMA_VERSION}-small-3.sqlite"
    assert (
        seated == tmp_path / "ehr" / f"ehr-{GENERATOR_VERSION}.db{SCHEMA_VERSION}-small-3-{SEATING.digest[:16]}.sqlite"
    )


def test_cache_root_defaults_to_medbench_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(tmp_path))
    assert cache.database_path().parent == tmp_path / "ehr"


def counting_build(monkeypatch: pytest.MonkeyPatch, delay_s: float = 0.0) -> list[Path]:
    """Wrap the real build so a test can count builds (and widen the race window)."""
    calls: list[Path] = []
    real_build = cache.build_database

    def build(path: Path, resources: Any) -> int:
        calls.append(path)
        time.sleep(delay_s)
        return real_build(path, resources)

    monkeypatch.setattr(cache, "build_database", build)
    return calls


def test_first_call_builds_and_later_calls_reuse_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = counting_build(monkeypatch)
    first = cache.ensure_database(seed=0, scale="small", cache_dir=tmp_path)
    second = cache.ensure_database(seed=0, scale="small", cache_dir=tmp_path)
    assert first == second
    assert len(calls) == 1
    FhirStore(first).close()


def test_concurrent_callers_wait_for_one_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = counting_build(monkeypatch, delay_s=0.3)
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(cache.ensure_database(seed=1, scale="small", cache_dir=tmp_path))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(set(results)) == 1 and results[0].is_file()


def _content(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        tables = ("res", "tok", "str", "dt", "meta", "params")
        return {table: sorted(conn.execute(f"SELECT * FROM {table}")) for table in tables}


@pytest.mark.parametrize("seating", [None, SEATING])
def test_a_build_split_across_processes_writes_exactly_what_one_process_writes(
    tmp_path: Path, seating: Seating | None
) -> None:
    """Parts are generated in other processes (spawned: they draw the population again) and
    appended with their rows renumbered; ids, order, index rows and counts all come out the same."""
    whole, split = tmp_path / "whole.sqlite", tmp_path / "split.sqlite"
    cache._build(whole, 0, "small", seating, None, None, parts=1)
    cache._build(split, 0, "small", seating, None, None, parts=3)
    assert _content(split) == _content(whole)
    assert not [p for p in tmp_path.iterdir() if p.name not in ("whole.sqlite", "split.sqlite")]


def test_only_large_scales_are_split() -> None:
    assert cache.build_parts("small") == 1
    assert cache.build_parts("full") in (1, 2)
