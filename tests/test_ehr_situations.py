"""Specification of seating by situation: official tasks meet their real grading branch on the embedded EHR.

The check cannot drift from the graders: every situation is recomputed from what the embedded
FHIR server serves, through the graders' own reads (medbench.grading.situations), and compared
with medbench/data/official_situations.jsonl.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from helpers.official import OFFICIAL_DIR, require_official
from medbench.ehr import build_population
from medbench.ehr.seating import NamedPerson, Seating, embedded_seating, seating_label
from medbench.ehr.situations import (
    SITUATIONS_PATH,
    Situation,
    charts_of,
    load_situations,
)
from medbench.ehr.task_labs import WINDOW_START
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.environment.provision import embedded_server
from medbench.grading.situations import observe_situation, situation_differences
from medbench.tasks import load_official, load_task_set
from medbench.tasks.task import Task, TaskSet

OFFICIAL = OFFICIAL_DIR


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medbench-cache")


@pytest.fixture(scope="module")
def official(cache_dir: Path) -> TaskSet:
    if not (OFFICIAL / "test_data_v2.json").exists():
        require_official()
    return load_official(official_dir=OFFICIAL, cache_dir=cache_dir)


def observed(tasks: list[Task] | tuple[Task, ...], cache_dir: Path) -> Iterator[Situation]:
    with embedded_server(seed=0, scale="small", seating=Seating.for_tasks(tasks), cache_dir=cache_dir) as fhir:
        gateway = FhirGateway(fhir.base_url, DEFAULT_DISPLAY_BASE)
        for task in tasks:
            yield observe_situation(task, gateway, DEFAULT_DISPLAY_BASE)


def test_every_official_task_meets_its_real_situation_on_the_embedded_ehr(official: TaskSet, cache_dir: Path) -> None:
    known = load_situations()
    differences = []
    equal = 0
    for situation in observed(official.tasks, cache_dir):
        found = situation_differences(known[situation.task_id], situation)
        differences += found
        equal += not found
    assert differences == []
    assert equal == 300


def test_the_official_task_set_is_seated_by_situation(official: TaskSet) -> None:
    seating = Seating.for_tasks(official.tasks)
    assert seating.kind == "situations" and seating_label(seating) == "situations"
    assert len(seating.charts) == 98
    assert seating.near_misses == (NamedPerson(("Debra",), "Dunn", date(1969, 5, 12)),)
    assert seating.digest != Seating.from_tasks(official.tasks).digest, (
        "situation seating needs its own cached database"
    )


def test_a_task_file_of_other_tasks_keeps_the_plain_seating() -> None:
    generated = load_task_set("generated", population=build_population(scale="small"))
    seating = embedded_seating(str(Path("my_tasks.json")), generated.tasks)
    assert seating is not None and seating.kind == "tasks" and seating.charts == ()
    assert seating == Seating.from_tasks(generated.tasks)


def test_the_generated_task_set_is_not_seated_at_all() -> None:
    generated = load_task_set("generated", population=build_population(scale="small"))
    assert seating_label(embedded_seating("generated", generated.tasks)) == "none"


def test_official_tasks_with_one_patient_changed_keep_the_plain_seating(official: TaskSet) -> None:
    tasks = list(official.tasks)
    tasks[40] = replace(tasks[40], eval_MRN="S1234567")
    assert Seating.for_tasks(tasks).kind == "tasks"


def test_a_subset_of_official_tasks_is_seated_by_situation_near_miss_included(
    official: TaskSet, cache_dir: Path
) -> None:
    """task1_29's namesake is task1_16's patient; without task1_16 the near miss must still exist."""
    subset = [official.by_id(task_id) for task_id in ("task1_29", "task5_25", "task6_13", "task9_3", "task10_2")]
    known = load_situations()
    assert Seating.for_tasks(subset).kind == "situations"
    assert [d for s in observed(subset, cache_dir) for d in situation_differences(known[s.task_id], s)] == []


def test_no_value_in_the_window_still_leaves_older_values_on_the_chart(official: TaskSet) -> None:
    seating = Seating.for_tasks(official.tasks)
    population = build_population(seed=0, scale="small", seating=seating)
    by_mrn = {p.mrn: p for p in population.patients}
    checked = 0
    for mrn, chart in seating.charts:
        for known, code in ((chart.mg_24h, "MG"), (chart.glu_avg_24h, "GLU")):
            if known is not None and known.value is None:
                times = [t for t, _ in by_mrn[mrn].labs[code]]
                assert times and max(times) < WINDOW_START, (mrn, code)
                checked += 1
    situations = load_situations().values()
    mg_none = {s.mrn for s in situations if s.situation in ("none_24h", "missing") and s.category in (4, 5)}
    glu_none = {s.mrn for s in situations if s.situation == "none_24h" and s.category == 6}
    assert checked == len(mg_none) + len(glu_none) > 30


def test_hba1c_keeps_its_real_time_and_older_results_stay_older(official: TaskSet) -> None:
    population = build_population(seed=0, scale="small", seating=Seating.for_tasks(official.tasks))
    labs = {p.mrn: p.labs["A1C"] for p in population.patients}
    latest = max(labs["S1635224"], key=lambda item: item[0])
    assert (latest[0].isoformat(), latest[1]) == ("2023-11-09T03:05:00+00:00", 5.9)
    assert labs["S6227720"] == []


def test_two_tasks_stating_different_values_for_one_patient_are_rejected() -> None:
    first = Situation("task4_1", 4, "S1111111", "mg_24h=2.0", {"latest_mg_within_24h": 2.0})
    second = Situation("task5_1", 5, "S1111111", "normal", {"latest_mg_within_24h": 2.1, "required_order": None})
    with pytest.raises(ValueError, match="task5_1"):
        charts_of([first, second])


def test_the_situations_fixture_is_the_shared_reference_file() -> None:
    shared = OFFICIAL / "official_situations.jsonl"
    if not shared.exists():
        require_official(shared)
    assert SITUATIONS_PATH.read_bytes() == shared.read_bytes()
    assert len(load_situations()) == 300
