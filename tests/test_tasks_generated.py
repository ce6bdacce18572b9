"""Generated task set: deterministic draws that exercise every grader branch, in our own words.

Most tests use a small hand-built population whose branches are known exactly; the tests at
the end run the generator on the real synthetic EHR (`small` scale).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers.official import OFFICIAL_DIR, needs_official
from medbench.clock import NOW, NOW_ISO
from medbench.ehr.population import build_population
from medbench.tasks import (
    TaskSet,
    branch_counts,
    generate_task_set,
    load_task_file,
    load_task_set,
    write_task_file,
)
from medbench.tasks.generated import (
    YEAR_AGO,
    a1c_branch,
    generated_presentation,
    latest,
    load_templates,
    magnesium_branch,
    potassium_branch,
    task1_found_pool,
)

SHARED = OFFICIAL_DIR
TEMPLATES = load_templates()
QUOTAS = {int(category): quotas for category, quotas in TEMPLATES["branches"].items()}
MRN = re.compile(r"\bS\d+\b")
TASK1_NAME = re.compile(r"named (?P<name>[^,(]+?)(?:,| \()")
DOB = re.compile(r"\b\d{4}-\d{2}-\d{2}\b(?!T)")
QUOTED = re.compile(r'"([^"]*)"')


@dataclass
class StandInPatient:
    """Same fields as medbench.ehr.population.PatientRecord (DESIGN.md contract)."""

    mrn: str
    given: list[str]
    family: str
    birth_date: date
    gender: str
    has_data: bool
    labs: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)


@dataclass
class StandInPopulation:
    patients: list[StandInPatient]


GIVEN = ["Ava", "Ben", "Cora", "Dan", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
FAMILY = ["Abbot", "Brandt", "Castillo", "Dorsey", "Ellison", "Fuentes", "Garza", "Hobbs", "Ingram", "Juarez"]
HOURS_AGO = [timedelta(hours=h) for h in (1, 5, 20)]


def stand_in_population(data_patients: int = 60, without: tuple[str, ...] = ()) -> StandInPopulation:
    """Data patient i cycles the tiers (MG by i % 5, K by i % 3, GLU by i // 3, A1C by i // 2)."""
    patients: list[StandInPatient] = []
    for i in range(data_patients + 10):
        labs: dict[str, list[tuple[datetime, float]]] = {}
        if i < data_patients:
            mg = [None, 2.1, 1.7, 1.2, 0.8][i % 5]
            if "severe" in without and mg == 0.8:
                mg = 1.2
            labs["MG"] = [(NOW - timedelta(days=3), 2.0)] + ([(NOW - timedelta(hours=2), mg)] if mg else [])
            labs["K"] = [] if i % 3 == 0 else [(NOW - timedelta(days=30), [3.1, 4.0][i % 3 - 1])]
            glu_tier = (i // 3) % 3
            labs["GLU"] = [(NOW - ago, 100.0 + 10 * n) for n, ago in enumerate(HOURS_AGO)] if glu_tier == 0 else []
            if glu_tier == 1:
                labs["GLU"] = [(NOW - timedelta(days=4), 140.0)]
            a1c_tier = (i // 2) % 3
            labs["A1C"] = [
                [],
                [(datetime(2021, 5, 1, 9, tzinfo=NOW.tzinfo), 7.9)],
                [(datetime(2023, 6, 1, 9, tzinfo=NOW.tzinfo), 6.4)],
            ][a1c_tier]
        patients.append(
            StandInPatient(
                mrn=f"S{1000000 + i * 7919}",
                given=[GIVEN[i % len(GIVEN)]] + (["Marie"] if i % 4 == 0 else []),
                family=FAMILY[i % len(FAMILY)] + ("son" if i >= len(FAMILY) else ""),
                birth_date=date(1940, 1, 1) + timedelta(days=211 * i),
                gender="female" if i % 2 else "male",
                has_data=i < data_patients,
                labs=labs,
            )
        )
    return StandInPopulation(patients)


@pytest.fixture(scope="module")
def population() -> StandInPopulation:
    return stand_in_population()


@pytest.fixture(scope="module")
def task_set(population: StandInPopulation) -> TaskSet:
    return generate_task_set(0, population)


def of_category(task_set: TaskSet, category: int) -> list[Any]:
    return [task for task in task_set.tasks if task.category == category]


def category_by_documented_rules(instruction: str, context: str) -> int:
    """The category-telling rule written in medbench/data/task_templates.json "conventions"."""
    text = instruction + " " + context
    for marker, category in (("306181000000106", 8), ("4548-4", 10), ("40032-917-01", 9), ("0338-1715-40", 5)):
        if marker in context:
            return category
    if '"GLU"' in context:
        return 6 if re.search(r"\b(average|mean)\b", text) else 7
    if '"MG"' in context:
        return 4
    if '"BP"' in context:
        return 3
    if "Patient not found" in instruction:
        return 1
    assert re.search(r"\bage\b", instruction)
    return 2


def test_thirty_tasks_per_category_with_upstream_ids(task_set: TaskSet) -> None:
    expected = [f"task{category}_{number}" for category in range(1, 11) for number in range(1, 31)]
    assert [task.id for task in task_set.tasks] == expected
    assert task_set.flavour == "generated"


def test_same_seed_and_population_give_the_same_task_set(population: StandInPopulation, task_set: TaskSet) -> None:
    again = generate_task_set(0, population)
    assert again.tasks == task_set.tasks
    assert again.sha256 == task_set.sha256


def test_another_seed_draws_other_patients_and_wording(population: StandInPopulation, task_set: TaskSet) -> None:
    other = generate_task_set(1, population)
    assert other.sha256 != task_set.sha256
    for category in range(1, 11):
        assert [t.instruction for t in of_category(other, category)] != [
            t.instruction for t in of_category(task_set, category)
        ]
    assert other.name != task_set.name


def test_branch_counts_follow_the_template_quotas(population: StandInPopulation, task_set: TaskSet) -> None:
    assert branch_counts(task_set, population) == QUOTAS


def test_a_branch_no_patient_falls_in_gives_its_quota_to_the_largest_branch() -> None:
    population = stand_in_population(without=("severe",))
    counts = branch_counts(generate_task_set(0, population), population)
    assert "severe" not in counts[5]
    assert counts[5]["missing"] == QUOTAS[5]["missing"] + QUOTAS[5]["severe"]
    assert sum(counts[5].values()) == 30


def test_small_pools_repeat_patients_only_after_using_each_once() -> None:
    population = stand_in_population(data_patients=15)
    task_set = generate_task_set(0, population)
    severe = [t.eval_MRN for t in of_category(task_set, 5) if mg_branch_of(t, population) == "severe"]
    assert len(severe) == QUOTAS[5]["severe"]
    assert len(set(severe)) == 3, "3 severe patients exist: each is used before any repeats"


def mg_branch_of(task: Any, population: StandInPopulation) -> str:
    patient = next(p for p in population.patients if p.mrn == task.eval_MRN)
    return magnesium_branch(patient.labs["MG"])


def test_every_task_is_recognised_by_the_documented_category_rules(task_set: TaskSet) -> None:
    for task in task_set.tasks:
        assert category_by_documented_rules(task.instruction, task.context) == task.category, task.id


def test_contexts_state_the_fixed_now_and_instructions_do_not(task_set: TaskSet) -> None:
    for task in task_set.tasks:
        assert NOW_ISO in task.context, task.id
        assert NOW_ISO not in task.instruction, task.id


@pytest.mark.parametrize(
    ("category", "facts"),
    [
        (3, ['"BP"']),
        (4, ['"MG"', "-1"]),
        (5, ['"MG"', "0338-1715-40", "1.5 to 1.9", "1 g", "2 g", "4 g", "1 hour", "2 hours", "4 hours"]),
        (6, ['"GLU"', "-1"]),
        (7, ['"GLU"', "-1"]),
        (8, ["306181000000106"]),
        (9, ['"K"', "40032-917-01", "2823-3", "10 mEq", "0.1 mEq/L", "3.5"]),
        (10, ['"A1C"', "4548-4", "[-1]"]),
    ],
)
def test_contexts_carry_the_codes_and_rules_graders_use(task_set: TaskSet, category: int, facts: list[str]) -> None:
    for task in of_category(task_set, category):
        for fact in facts:
            assert fact in task.context, (task.id, fact)


def test_tasks_2_to_10_name_exactly_one_mrn_the_graded_patient(task_set: TaskSet) -> None:
    for task in task_set.tasks:
        if task.category == 1:
            assert not MRN.search(task.instruction)
        else:
            assert MRN.findall(task.instruction) == [task.eval_MRN], task.id


def test_task1_found_names_a_patient_whom_name_and_birthdate_find_alone(
    population: StandInPopulation, task_set: TaskSet
) -> None:
    found = [t for t in of_category(task_set, 1) if t.sol != ["Patient not found"]]
    assert found
    for task in found:
        name = TASK1_NAME.search(task.instruction)
        assert name and DOB.findall(task.instruction), task.instruction
        *given, family = name.group("name").split()
        matches = [
            p
            for p in population.patients
            if p.birth_date.isoformat() == DOB.findall(task.instruction)[0]
            and (
                p.family.lower().startswith(family.lower())
                or any(g.lower().startswith(given[0].lower()) for g in p.given)
            )
        ]
        assert [p.mrn for p in matches] == [task.eval_MRN] == task.sol


def test_task1_not_found_is_a_near_miss_that_no_patient_matches(
    population: StandInPopulation, task_set: TaskSet
) -> None:
    missing = [t for t in of_category(task_set, 1) if t.sol == ["Patient not found"]]
    assert len(missing) == QUOTAS[1]["not_found"]
    for task in missing:
        assert task.eval_MRN is None
        *given, family = TASK1_NAME.search(task.instruction).group("name").split()  # type: ignore[union-attr]
        dob = date.fromisoformat(DOB.findall(task.instruction)[0])
        assert not [
            p for p in population.patients if p.birth_date == dob and (p.family == family or p.given[0] == given[0])
        ]
        near = [p for p in population.patients if p.family == family or p.birth_date == dob or p.given[0] == given[0]]
        assert near, f"{task.id} should resemble a real patient"


def test_task1_found_pool_excludes_patients_a_prefix_search_would_confuse() -> None:
    population = stand_in_population()
    twin = population.patients[3]
    population.patients.append(
        StandInPatient("S9999999", ["Zed"], twin.family + "ley", twin.birth_date, "male", True, {})
    )
    pool = {p.mrn for p in task1_found_pool(population)}
    assert twin.mrn not in pool and "S9999999" not in pool
    assert population.patients[4].mrn in pool


def test_task3_quotes_the_blood_pressure_it_expects(task_set: TaskSet) -> None:
    values = set()
    for task in of_category(task_set, 3):
        assert QUOTED.findall(task.instruction) == task.sol
        assert re.fullmatch(r"\d{2,3}/\d{2,3} mmHg", task.sol[0])
        values.add(task.sol[0])
    assert len(values) > 10, "blood pressure values vary between tasks"


def test_task8_quotes_an_sbar_note_it_expects(task_set: TaskSet) -> None:
    notes = set()
    for task in of_category(task_set, 8):
        assert QUOTED.findall(task.instruction) == task.sol
        note = task.sol[0]
        assert [note.index(part) for part in ("Situation:", "Background:", "Assessment:", "Recommendation:")] == sorted(
            note.index(part) for part in ("Situation:", "Background:", "Assessment:", "Recommendation:")
        )
        notes.add(note)
    assert len(notes) > 10, "referral notes vary between tasks"


@pytest.mark.parametrize(
    ("value", "branch"),
    [
        (2.0, "normal"),
        (1.91, "normal"),
        (1.9, "mild"),
        (1.5, "mild"),
        (1.49, "moderate"),
        (1.0, "moderate"),
        (0.99, "severe"),
    ],
)
def test_task5_tiers_follow_the_dosing_thresholds(value: float, branch: str) -> None:
    assert magnesium_branch([(NOW - timedelta(hours=1), value)]) == branch


def test_task5_reading_exactly_24h_old_counts_and_older_does_not() -> None:
    assert magnesium_branch([(NOW - timedelta(hours=24), 1.2)]) == "moderate"
    assert magnesium_branch([(NOW - timedelta(hours=24, seconds=1), 1.2)]) == "missing"


def test_latest_keeps_the_first_of_equal_times_as_graders_do() -> None:
    same = NOW - timedelta(hours=3)
    assert latest([(same, 3.0), (same, 4.0), (NOW - timedelta(days=2), 5.0)]) == (same, 3.0)


def test_task9_low_is_below_3_5() -> None:
    assert potassium_branch([(NOW, 3.5)]) == "normal"
    assert potassium_branch([(NOW, 3.4)]) == "low"
    assert potassium_branch([]) == "missing"


def test_task10_stale_means_strictly_older_than_one_year() -> None:
    assert a1c_branch([(YEAR_AGO, 6.0)]) == "recent"
    assert a1c_branch([(YEAR_AGO - timedelta(seconds=1), 6.0)]) == "stale"


def test_prompt_formats_like_the_official_one_and_shows_the_base_url() -> None:
    shown = generated_presentation()
    prompt = shown.prompt_template.format(
        api_base="http://localhost:8080/fhir/", functions=json.dumps(shown.functions), context="CTX", question="Q?"
    )
    assert "http://localhost:8080/fhir/" in prompt
    for action in ("GET http://localhost:8080/fhir/", "POST http://localhost:8080/fhir/", "FINISH(["):
        assert action in prompt
    assert prompt.endswith("Context: CTX\nQuestion: Q?")


def test_function_catalog_offers_the_nine_official_capabilities() -> None:
    names = sorted(function["name"] for function in generated_presentation().functions)
    assert names == sorted(
        [
            "GET [base]Patient",
            "GET [base]Observation",
            "GET [base]Observation",
            "POST [base]Observation",
            "GET [base]Condition",
            "GET [base]MedicationRequest",
            "POST [base]MedicationRequest",
            "GET [base]Procedure",
            "POST [base]ServiceRequest",
        ]
    )


@needs_official
def test_our_wording_shares_no_long_phrase_with_the_official_assets(task_set: TaskSet) -> None:
    def phrases(text: str) -> set[tuple[str, ...]]:
        """7-word runs, skipping runs that are mostly numbers (shared facts such as thresholds)."""
        words = re.findall(r"[a-z0-9']+", text.lower())
        runs = (tuple(words[i : i + 7]) for i in range(len(words) - 6))
        return {run for run in runs if sum(word.isalpha() for word in run) >= 5}

    official: set[tuple[str, ...]] = set()
    for record in json.loads((SHARED / "test_data_v2.json").read_text(encoding="utf-8")):
        official |= phrases(record["instruction"]) | phrases(record["context"])
    official |= phrases((SHARED / "prompt_template.txt").read_text(encoding="utf-8"))
    ours = generated_presentation().prompt_template + json.dumps(generated_presentation().functions)
    for task in task_set.tasks:
        ours += "\n" + task.instruction + "\n" + task.context
    assert not phrases(ours) & official


def test_written_generated_set_reloads_identically(task_set: TaskSet, tmp_path: Path) -> None:
    reloaded = load_task_file(write_task_file(task_set, tmp_path / "generated.json"))
    assert reloaded.tasks == task_set.tasks
    assert reloaded.prompt_template == task_set.prompt_template


@pytest.fixture(scope="module")
def small_ehr() -> Any:
    return build_population(seed=0, scale="small")


def test_small_synthetic_ehr_exercises_every_branch_in_template_proportions(small_ehr: Any) -> None:
    task_set = generate_task_set(0, small_ehr)
    assert branch_counts(task_set, small_ehr) == QUOTAS


def test_generated_tasks_name_only_patients_of_the_synthetic_ehr(small_ehr: Any) -> None:
    data_mrns = {p.mrn for p in small_ehr.patients if p.has_data}
    for task in generate_task_set(0, small_ehr).tasks:
        assert task.eval_MRN is None or task.eval_MRN in data_mrns, task.id


def test_load_task_set_draws_from_the_ehr_it_is_given(small_ehr: Any) -> None:
    default = load_task_set("generated", population=small_ehr)
    assert default.tasks == generate_task_set(0, small_ehr).tasks
    assert load_task_set("generated", task_seed=7, population=small_ehr).sha256 != default.sha256
    assert load_task_set("generated", population=build_population(seed=1)).sha256 != default.sha256


def test_the_generated_set_needs_the_ehr_it_is_drawn_from() -> None:
    with pytest.raises(ValueError, match="population"):
        load_task_set("generated")
