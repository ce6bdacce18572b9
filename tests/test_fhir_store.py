"""The SQLite store: atomic bulk build, compact storage, indexed search paths."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.fhir_sample import sample_resources
from medbench.fhir import FhirStore, build_database
from medbench.fhir.search import parse_query


@pytest.fixture
def store(sample_db: Path) -> Iterator[FhirStore]:
    opened = FhirStore(sample_db)
    yield opened
    opened.close()


def test_build_returns_the_number_of_resources(tmp_path: Path) -> None:
    assert build_database(tmp_path / "x.sqlite", sample_resources()) == len(sample_resources())


def test_a_failed_build_leaves_neither_database_nor_temp_file(tmp_path: Path) -> None:
    def resources() -> Iterator[dict[str, Any]]:
        yield from sample_resources()[:3]
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError, match="generator failed"):
        build_database(tmp_path / "ehr.sqlite", resources())
    assert list(tmp_path.iterdir()) == []


def test_duplicate_type_and_id_is_rejected(tmp_path: Path) -> None:
    patient = sample_resources()[0]
    with pytest.raises(ValueError, match="duplicate"):
        build_database(tmp_path / "ehr.sqlite", [patient, patient])
    assert not (tmp_path / "ehr.sqlite").exists()


def test_resource_without_id_is_rejected_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks resourceType or id"):
        build_database(tmp_path / "ehr.sqlite", [{"resourceType": "Patient"}])


def test_resources_are_stored_as_compact_json_in_insertion_order(sample_db: Path) -> None:
    with sqlite3.connect(sample_db) as conn:
        rows = conn.execute("SELECT json FROM res ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [
        json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in sample_resources()
    ]


@pytest.mark.parametrize(
    ("resource_type", "params", "index"),
    [
        ("Observation", [("patient", "S0000001"), ("code", "MG")], "tok_code_patient"),
        (
            "Observation",
            [("patient", "S0000001"), ("category", "vital-signs"), ("date", "ge2023-11-12")],
            "dt_patient_low",
        ),
        ("Patient", [("family", "watkins"), ("given", "lisa")], "str_norm"),
        ("Patient", [("birthdate", "1996-10-10")], "dt_patient_low"),
        ("Patient", [("identifier", "S0000001")], "tok_code_patient"),
        ("Observation", [("patient", "S0000001")], "res_type_patient"),
    ],
)
def test_agent_and_grader_searches_use_an_index(
    store: FhirStore, resource_type: str, params: list[tuple[str, str]], index: str
) -> None:
    plan = store.query_plan(parse_query(resource_type, params))
    assert any(index in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_store_refuses_a_database_of_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    build_database(path, sample_resources())
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="schema version"):
        FhirStore(path)


def test_missing_database_names_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ensure_database"):
        FhirStore(tmp_path / "nope.sqlite")


def test_store_writes_layer_creates_no_file_in_the_temp_folder(
    sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writes layer lives in memory, so a killed server cannot leave a file behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    opened = FhirStore(sample_db)
    opened.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "BP"},
            "subject": {"reference": "Patient/S0000001"},
        }
    )
    assert list(tmp_path.iterdir()) == []
    opened.close()


def test_store_start_sweeps_stale_writes_files_of_older_versions(
    sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale, fresh = tmp_path / "medbench-fhir-writes-old.sqlite", tmp_path / "medbench-fhir-writes-new.sqlite-wal"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (0, 0))
    FhirStore(sample_db).close()
    assert not stale.exists()
    assert fresh.exists(), "a fresh file may belong to a running older server"
