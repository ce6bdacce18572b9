"""Specification of seating a task file on the synthetic EHR (medbench.ehr.seating)."""

from __future__ import annotations

import json
import unicodedata
from datetime import date, timedelta
from itertools import takewhile
from typing import Any

import pytest

from helpers.official import OFFICIAL_DIR, require_official
from medbench.clock import NOW
from medbench.ehr import Population, Seating, build_population
from medbench.ehr.seating import NamedPerson
from medbench.tasks.task import Task

OFFICIAL_TASKS = OFFICIAL_DIR / "test_data_v2.json"


def task(task_id: str, instruction: str = "", sol: list[Any] | None = None, eval_mrn: str | None = None) -> Task:
    return Task(task_id, int(task_id.split("_")[0].removeprefix("task")), instruction, "", eval_mrn, sol)


def lookup(name: str, dob: str) -> str:
    return f'What’s the MRN of the patient with name {name} and DOB of {dob}? If the patient does not exist, the answer should be "Patient not found"'


def folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def search(patients: list[dict[str, Any]], given: str, family: str, birthdate: str) -> list[str]:
    """`Patient?given=&family=&birthdate=` as HAPI answers it (starts-with, case/accent-insensitive)."""
    return [
        p["id"]
        for p in patients
        if p["birthDate"] == birthdate
        and folded(p["name"][0]["family"]).startswith(folded(family))
        and any(folded(g).startswith(folded(given)) for g in p["name"][0]["given"])
    ]


def patient_resources(population: Population) -> list[dict[str, Any]]:
    return list(takewhile(lambda r: r["resourceType"] == "Patient", population.iter_resources()))


@pytest.fixture(scope="module")
def official_tasks() -> list[Task]:
    if not OFFICIAL_TASKS.is_file():
        require_official(OFFICIAL_TASKS)
    records = json.loads(OFFICIAL_TASKS.read_text(encoding="utf-8"))
    return [task(r["id"], r["instruction"], r.get("sol"), r.get("eval_MRN")) for r in records]


@pytest.fixture(scope="module")
def official_seating(official_tasks: list[Task]) -> Seating:
    return Seating.from_tasks(official_tasks)


@pytest.fixture(scope="module")
def seated(official_seating: Seating) -> Population:
    return build_population(seed=0, scale="small", seating=official_seating)


def test_parses_the_official_task1_wording() -> None:
    person = NamedPerson.parse(lookup("Peter Stafford", "1932-12-29"))
    assert person == NamedPerson(("Peter",), "Stafford", date(1932, 12, 29))


def test_parses_multi_word_given_names_with_family_last() -> None:
    person = NamedPerson.parse("What's the MRN of the patient with name Mary Ann Van and DOB of 2001-02-03?")
    assert person == NamedPerson(("Mary", "Ann"), "Van", date(2001, 2, 3))


def test_official_file_yields_98_mrns_28_found_and_2_not_found(official_seating: Seating) -> None:
    assert len(official_seating.mrns) == 98
    assert len(official_seating.found) == 28
    assert [p.to_json() for p in official_seating.not_found] == [
        ["Debra", "Dunn", "1969-05-15"],
        ["Kyle", "Jia", "1969-05-15"],
    ]
    assert official_seating.unparsed == ()


def test_every_official_mrn_exists_as_a_data_patient(seated: Population, official_tasks: list[Task]) -> None:
    with_data = {p.mrn for p in seated.patients if p.has_data}
    assert {t.eval_MRN for t in official_tasks if t.eval_MRN} <= with_data
    assert len({p.mrn for p in seated.patients}) == len(seated.patients)


def test_official_found_people_are_found_exactly_once_under_their_mrn(
    seated: Population, official_tasks: list[Task]
) -> None:
    patients = patient_resources(seated)
    checked = 0
    for t in official_tasks:
        if t.category == 1 and t.sol != ["Patient not found"]:
            person = NamedPerson.parse(t.instruction)
            assert person is not None
            assert search(patients, person.given[0], person.family, person.birth_date.isoformat()) == t.sol, t.id
            checked += 1
    assert checked == 28


def test_official_not_found_people_are_absent(seated: Population) -> None:
    patients = patient_resources(seated)
    assert search(patients, "Debra", "Dunn", "1969-05-15") == []
    assert search(patients, "Kyle", "Jia", "1969-05-15") == []
    assert len(search(patients, "Debra", "Dunn", "1969-05-12")) == 1


def test_seating_keeps_the_demographic_facts_tasks_state(seated: Population) -> None:
    andrew = next(p for p in seated.patients if p.mrn == "S2874099")
    assert (andrew.given, andrew.family, andrew.birth_date, andrew.gender) == (
        ["Andrew"],
        "Bishop",
        date(1963, 1, 29),
        "male",
    )


def test_official_magnesium_tasks_meet_every_branch(seated: Population, official_tasks: list[Task]) -> None:
    window = NOW - timedelta(hours=24)
    by_mrn = {p.mrn: p for p in seated.patients}
    branches = set()
    for t in official_tasks:
        if t.category == 5 and t.eval_MRN:
            recent = [r for r in by_mrn[t.eval_MRN].labs["MG"] if r[0] >= window]
            value = max(recent, key=lambda r: r[0])[1] if recent else None
            branches.add("missing" if value is None else "normal" if value > 1.9 else "mild" if value >= 1.5 else "low")
    assert branches == {"missing", "normal", "mild", "low"}


def test_seated_mrns_get_data_even_when_they_outnumber_the_scale(seated: Population) -> None:
    assert sum(p.has_data for p in seated.patients) == 98


def test_a_not_found_person_moves_an_existing_lookalike_off_that_birth_date() -> None:
    base = build_population(seed=0, scale="small")
    victim = base.patients[4]
    name = f"{victim.given[0]} {victim.family}"
    seating = Seating.from_tasks([task("task1_1", lookup(name, victim.birth_date.isoformat()), ["Patient not found"])])
    patients = patient_resources(build_population(seed=0, scale="small", seating=seating))
    assert search(patients, victim.given[0], victim.family, victim.birth_date.isoformat()) == []
    assert victim.mrn in {p["id"] for p in patients}


def test_a_found_person_is_unique_even_if_a_random_patient_shared_the_name() -> None:
    base = build_population(seed=0, scale="small")
    twin = base.patients[7]
    name = f"{twin.given[0]} {twin.family}"
    seating = Seating.from_tasks([task("task1_1", lookup(name, twin.birth_date.isoformat()), ["S0000001"], "S0000001")])
    patients = patient_resources(build_population(seed=0, scale="small", seating=seating))
    assert search(patients, twin.given[0], twin.family, twin.birth_date.isoformat()) == ["S0000001"]


def test_any_upstream_format_file_can_be_seated() -> None:
    tasks = [
        task("task2_1", "What's the age of the patient with MRN of S1111111?", None, "S1111111"),
        task("task5_1", "Check patient S2222222's last serum magnesium level", None, "S2222222"),
        task("task1_1", lookup("Zoë Ångström", "1950-01-01"), ["S3333333"], "S3333333"),
    ]
    population = build_population(seed=5, scale="small", seating=Seating.from_tasks(tasks))
    mrns = {p.mrn: p for p in population.patients}
    assert all(mrns[m].has_data for m in ("S1111111", "S2222222", "S3333333"))
    assert search(patient_resources(population), "Zoe", "angstrom", "1950-01-01") == ["S3333333"]


def test_unreadable_task1_wording_is_reported_not_guessed() -> None:
    seating = Seating.from_tasks([task("task1_9", "Find Peter please", ["S1234567"], "S1234567")])
    assert seating.unparsed == ("task1_9",)
    assert seating.found == ()
    assert seating.mrns == (("S1234567", (1,)),)


def test_one_mrn_for_two_people_is_rejected_naming_both_tasks() -> None:
    tasks = [
        task("task1_1", lookup("Ann Lee", "1950-01-01"), ["S1234567"]),
        task("task1_2", lookup("Bo Lee", "1950-01-01"), ["S1234567"]),
    ]
    with pytest.raises(ValueError, match="task1_1 and task1_2"):
        Seating.from_tasks(tasks)


def test_one_person_both_found_and_not_found_is_rejected() -> None:
    tasks = [
        task("task1_1", lookup("Ann Lee", "1950-01-01"), ["S1234567"]),
        task("task1_2", lookup("Ann Lee", "1950-01-01"), ["Patient not found"]),
    ]
    with pytest.raises(ValueError, match="not found"):
        Seating.from_tasks(tasks)


def test_digest_is_stable_hex_and_tracks_the_constraints(official_tasks: list[Task], official_seating: Seating) -> None:
    assert official_seating.digest == Seating.from_tasks(official_tasks).digest
    assert int(official_seating.digest, 16) >= 0 and len(official_seating.digest) == 64
    assert Seating.from_tasks(official_tasks[:-1]).digest != official_seating.digest


def test_seated_population_is_deterministic(seated: Population, official_seating: Seating) -> None:
    again = build_population(seed=0, scale="small", seating=official_seating)
    assert [(p.mrn, p.birth_date, p.labs) for p in again.patients] == [
        (p.mrn, p.birth_date, p.labs) for p in seated.patients
    ]


@pytest.mark.parametrize(
    "instruction",
    [
        'Look up the MRN of the patient named Peter Stafford, born 1932-12-29. If nobody matches, answer "Patient not found".',
        'Which MRN belongs to the patient named Peter Stafford (born 1932-12-29)? Reply with "Patient not found" otherwise.',
    ],
)
def test_parses_the_generated_task1_wording(instruction: str) -> None:
    assert NamedPerson.parse(instruction) == NamedPerson(("Peter",), "Stafford", date(1932, 12, 29))


def test_seating_a_task_set_generated_from_the_population_changes_nothing() -> None:
    from medbench.tasks.generated import generate_task_set

    base = build_population(seed=0, scale="small")
    seating = Seating.from_tasks(generate_task_set(0, base).tasks)
    assert seating.unparsed == ()
    assert seating.found and seating.not_found
    assert list(build_population(seed=0, scale="small", seating=seating).iter_resources()) == list(
        base.iter_resources()
    )
