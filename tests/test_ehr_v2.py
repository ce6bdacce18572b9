"""Specification of the v2 EHR: the official v2 patients exist, every official v2 task meets the
branch the silent-finish labels give it, the generated v2 set covers every branch, all read back
through the embedded FHIR server over HTTP with the v2 graders' own queries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers.official import OFFICIAL_V2_DIR, require_official
from medbench.ehr.v2.branches import BRANCHES, CUTOFF, is_silent, stated_now
from medbench.ehr.v2.cohort import build_v2_cohort
from medbench.ehr.v2.observe import branch_now, observe_branch
from medbench.ehr.v2.seating import V2Seating, v2_embedded_seating, v2_seating_label
from medbench.ehr.v2.situations import load_v2_situations
from medbench.environment.provision import embedded_v2_server
from medbench.tasks import load_task_set, load_v2
from medbench.tasks.generated_v2 import v2_branch_counts
from medbench.tasks.task import TaskSet

SHARED = OFFICIAL_V2_DIR


class Reader:
    """GETs relative search URLs on a running server, checking what every v2 grader relies on."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def __call__(self, query: str) -> dict[str, Any]:
        response = self.session.get(self.base_url + query, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/fhir+json")
        bundle: dict[str, Any] = response.json()
        assert not [link for link in bundle.get("link", []) if link["relation"] == "next"], "graders follow no paging"
        return bundle


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medbench-cache")


@pytest.fixture(scope="module")
def official() -> TaskSet:
    require_official(SHARED / "new_patient_tasks.json")
    return load_v2(official_dir=SHARED)


@pytest.fixture(scope="module")
def seated(official: TaskSet, cache_dir: Path) -> Iterator[Reader]:
    with embedded_v2_server(0, "small", V2Seating.for_tasks(official.tasks), cache_dir) as server:
        yield Reader(server.base_url)


@pytest.fixture(scope="module")
def generated() -> TaskSet:
    return load_task_set("generated-v2", task_seed=0, ehr_seed=0, ehr_scale="small")


@pytest.fixture(scope="module")
def unseated(cache_dir: Path) -> Iterator[Reader]:
    with embedded_v2_server(0, "small", None, cache_dir) as server:
        yield Reader(server.base_url)


def test_every_official_v2_patient_exists(official: TaskSet, seated: Reader) -> None:
    for mrn in sorted({task.eval_MRN for task in official.tasks if task.eval_MRN}):
        bundle = seated(f"Patient?identifier={mrn}&_format=json")
        assert [entry["resource"]["id"] for entry in bundle["entry"]] == [mrn]


def test_every_official_v2_task_meets_its_labelled_branch(official: TaskSet, seated: Reader) -> None:
    labels = {
        record["id"]: record["silent_pass"]
        for record in map(json.loads, (SHARED / "silent_labels.jsonl").read_text(encoding="utf-8").splitlines())
    }
    situations = load_v2_situations()
    observed = {
        task.id: observe_branch(
            task.category, task.eval_MRN or "", branch_now(task.category, stated_now(task.context)), seated
        )
        for task in official.tasks
    }
    assert {tid: b for tid, b in observed.items() if b != situations[tid].branch} == {}
    silent = {tid for tid, branch in observed.items() if is_silent(int(tid[4:].split("_")[0]), branch)}
    assert silent == {tid for tid, passes in labels.items() if passes}
    assert len(silent) == 121


def test_the_situations_file_agrees_with_the_silent_labels() -> None:
    require_official(SHARED / "silent_labels.jsonl")
    labels = [json.loads(line) for line in (SHARED / "silent_labels.jsonl").read_text(encoding="utf-8").splitlines()]
    situations = load_v2_situations()
    assert [s.task_id for s in situations.values()] == [label["id"] for label in labels]
    for label in labels:
        situation = situations[label["id"]]
        assert (situation.mrn, situation.silent) == (label["eval_MRN"], label["silent_pass"])
        assert is_silent(situation.category, situation.branch) == situation.silent


def test_official_v2_tasks_are_seated_by_situation_and_generated_v2_is_unseated(
    official: TaskSet, generated: TaskSet
) -> None:
    assert v2_seating_label(v2_embedded_seating("v2", official.tasks)) == "v2-situations"
    assert v2_seating_label(v2_embedded_seating("generated-v2", generated.tasks)) == "none"
    assert v2_seating_label(v2_embedded_seating("subset.json", official.tasks[:5])) == "v2-situations"
    moved = [replace(official.tasks[0], eval_MRN="S0000001"), *official.tasks[1:5]]
    assert v2_seating_label(v2_embedded_seating("my.json", moved)) == "v2-tasks"


def test_generated_v2_covers_every_branch_of_every_category(generated: TaskSet, unseated: Reader) -> None:
    cohort = build_v2_cohort(0, "small")
    counts = v2_branch_counts(generated, cohort)
    assert {pair for pair in counts} == {(c, b) for c, branches in BRANCHES.items() for b in branches}
    assert Counter(task.category for task in generated.tasks) == dict.fromkeys(BRANCHES, 30)
    for task in generated.tasks:
        now = branch_now(task.category, stated_now(task.context))
        drawn = cohort.patient(task.eval_MRN or "").chart.branch(task.category)
        assert observe_branch(task.category, task.eval_MRN or "", now, unseated) == drawn, task.id


def test_generated_v2_is_fixed_by_its_seed_and_a_new_seed_draws_new_variants(generated: TaskSet) -> None:
    again = load_task_set("generated-v2", task_seed=0)
    other = load_task_set("generated-v2", task_seed=1)
    assert again.sha256 == generated.sha256
    assert other.sha256 != generated.sha256
    assert (generated.name, generated.benchmark, generated.flavour) == ("generated-v2", "v2", "generated")


def test_generated_v2_contexts_state_the_now_their_charts_were_built_around(generated: TaskSet) -> None:
    cohort = build_v2_cohort(0, "small")
    for task in generated.tasks:
        if task.category in (1, 3, 4, 5, 9, 10):
            assert stated_now(task.context) == cohort.patient(task.eval_MRN or "").chart.now(task.category), task.id


def every_resource(reader: Reader, mrns: list[str]) -> Iterator[dict[str, Any]]:
    for mrn in mrns:
        for rtype in ("Observation", "MedicationRequest", "Procedure", "Condition", "ServiceRequest"):
            for entry in reader(f"{rtype}?patient={mrn}&_count=5000&_format=json").get("entry", []):
                yield entry["resource"]


def test_seeded_v2_data_is_last_updated_before_the_cutoff_and_keeps_its_meta(official: TaskSet, seated: Reader) -> None:
    mrns = sorted({task.eval_MRN for task in official.tasks if task.eval_MRN})[:40]
    resources = list(every_resource(seated, mrns))
    assert len(resources) > 1000
    stamps = [resource["meta"]["lastUpdated"] for resource in resources]
    assert all(datetime.fromisoformat(stamp) <= CUTOFF for stamp in stamps)
    assert all(stamp.startswith("2024-12-30T2") for stamp in stamps if stamp >= "2024")
    assert all(
        resource["meta"]["versionId"] == "1" and resource["meta"]["source"].startswith("#") for resource in resources
    )
    assert seated("Procedure?_lastUpdated=gt2025-01-01T00:00:00%2B00:00&_count=5000&_format=json")["total"] == 0


def test_graders_fields_are_always_present(official: TaskSet, seated: Reader) -> None:
    mrns = sorted({task.eval_MRN for task in official.tasks if task.eval_MRN})
    for resource in every_resource(seated, mrns[:30]):
        if resource["resourceType"] == "MedicationRequest":
            assert resource["medicationCodeableConcept"]["text"]
        if resource["resourceType"] == "Observation" and resource["code"]["coding"][0]["code"] in (
            "TSH",
            "FT4",
            "QTCINTERVAL",
        ):
            assert isinstance(resource["valueQuantity"]["value"], int | float) and resource["effectiveDateTime"]
        for key in ("effectiveDateTime", "performedDateTime", "authoredOn", "onsetDateTime"):
            if key in resource:
                assert datetime.fromisoformat(resource[key]).utcoffset() is not None and "+00:00" in resource[key]


def test_the_latest_qtc_by_last_updated_is_the_latest_by_date(official: TaskSet, seated: Reader) -> None:
    for mrn in sorted({task.eval_MRN for task in official.tasks if task.eval_MRN}):
        qtcs = seated(f"Observation?patient={mrn}&code=QTCINTERVAL&_count=5000&_format=json").get("entry", [])
        if qtcs:
            by_update = max(qtcs, key=lambda e: e["resource"]["meta"]["lastUpdated"])
            by_date = max(qtcs, key=lambda e: e["resource"]["effectiveDateTime"])
            assert by_update is by_date


def test_prolonged_qtc_patients_hold_an_active_qt_drug(official: TaskSet, seated: Reader) -> None:
    for task in official.tasks:
        if task.category == 7 and load_v2_situations()[task.id].branch == "prolonged":
            orders = seated(f"MedicationRequest?patient={task.eval_MRN}&status=active&_count=5000&_format=json")[
                "entry"
            ]
            texts = " ".join(e["resource"]["medicationCodeableConcept"]["text"].lower() for e in orders)
            assert any(
                drug in texts
                for drug in (
                    "ondansetron",
                    "haloperidol",
                    "quetiapine",
                    "olanzapine",
                    "prochlorperazine",
                    "risperidone",
                )
            )
