"""Specification of the synthetic EHR population (medbench.ehr.population)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import takewhile
from typing import Any

import pytest

from medbench.clock import NOW
from medbench.ehr import GENERATOR_VERSION, SCALES, build_population
from medbench.ehr.population import Population

WINDOW_START = NOW - timedelta(hours=24)
YEAR_AGO = datetime(2022, 11, 13, 10, 15, tzinfo=timezone.utc)
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

Readings = list[tuple[datetime, float]]


@pytest.fixture(scope="module")
def population() -> Population:
    return build_population(seed=0, scale="small")


@pytest.fixture(scope="module")
def stored(population: Population) -> list[dict[str, Any]]:
    return list(population.iter_resources())


@pytest.fixture(scope="module")
def labs_by_patient(stored: list[dict[str, Any]]) -> dict[str, dict[str, Readings]]:
    """Lab values per patient and code, read back from the resources in storage order."""
    labs: dict[str, dict[str, Readings]] = defaultdict(lambda: defaultdict(list))
    for resource in stored:
        if resource["resourceType"] == "Observation" and "valueQuantity" in resource:
            mrn = resource["subject"]["reference"].removeprefix("Patient/")
            code = resource["code"]["coding"][0]["code"]
            labs[mrn][code].append(
                (datetime.fromisoformat(resource["effectiveDateTime"]), resource["valueQuantity"]["value"])
            )
    return labs


def latest(readings: Readings) -> tuple[datetime, float] | None:
    """Graders' "latest": greatest effectiveDateTime, the first one seen on ties."""
    best = None
    for reading in readings:
        if best is None or reading[0] > best[0]:
            best = reading
    return best


def mg_tier(readings: Readings) -> str:
    newest = latest([r for r in readings if r[0] >= WINDOW_START])
    if newest is None:
        return "missing"
    value = newest[1]
    return "normal" if value > 1.9 else "mild" if value >= 1.5 else "moderate" if value >= 1 else "severe"


def k_tier(readings: Readings) -> str:
    newest = latest(readings)
    return "missing" if newest is None else "low" if newest[1] < 3.5 else "normal"


def glu_tier(readings: Readings) -> str:
    if any(r[0] >= WINDOW_START for r in readings):
        return "within_24h"
    return "older_only" if readings else "none"


def a1c_tier(readings: Readings) -> str:
    newest = latest(readings)
    return "missing" if newest is None else "stale" if newest[0] < YEAR_AGO else "recent"


TIER_OF = {"MG": ("mg", mg_tier), "K": ("k", k_tier), "GLU": ("glu", glu_tier), "A1C": ("a1c", a1c_tier)}


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)


def test_same_seed_and_scale_give_identical_resources(stored: list[dict[str, Any]]) -> None:
    again = list(build_population(seed=0, scale="small").iter_resources())
    assert again == stored


def test_iterating_twice_gives_the_same_resources(population: Population, stored: list[dict[str, Any]]) -> None:
    assert list(population.iter_resources()) == stored


def test_other_seed_gives_other_patients_and_values(population: Population, stored: list[dict[str, Any]]) -> None:
    other = build_population(seed=1, scale="small")
    assert {p.mrn for p in other.patients}.isdisjoint({p.mrn for p in population.patients})
    assert [p.labs["MG"] for p in other.patients[:5]] != [p.labs["MG"] for p in population.patients[:5]]


def test_generator_version_names_faker_because_faker_decides_names() -> None:
    assert re.fullmatch(r"\d+\+faker[\d.]+", GENERATOR_VERSION)


def test_unknown_scale_error_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="small, medium, full"):
        build_population(scale="huge")


def test_small_scale_has_data_patients_demographic_only_patients_and_a_few_thousand_resources(
    population: Population, stored: list[dict[str, Any]]
) -> None:
    with_data = [p for p in population.patients if p.has_data]
    assert 20 <= len(with_data) <= 30
    assert len(population.patients) > len(with_data)
    assert 2000 <= len(stored) <= 15000
    assert {r["resourceType"] for r in stored} == {
        "Patient",
        "Observation",
        "Condition",
        "MedicationRequest",
        "Procedure",
    }


def test_full_scale_matches_the_real_dataset_size_on_paper() -> None:
    full = SCALES["full"]
    assert full.data_patients == 100
    assert full.data_patients + full.demographic_only_patients == 500


def test_patients_come_first_then_each_data_patients_resources(
    population: Population, stored: list[dict[str, Any]]
) -> None:
    patients = list(takewhile(lambda r: r["resourceType"] == "Patient", stored))
    assert [r["id"] for r in patients] == [p.mrn for p in population.patients]
    assert all(r["resourceType"] != "Patient" for r in stored[len(patients) :])


def test_demographics_only_patients_have_no_clinical_resources(
    population: Population, stored: list[dict[str, Any]]
) -> None:
    referenced = {r["subject"]["reference"].removeprefix("Patient/") for r in stored if "subject" in r}
    for patient in population.patients:
        assert (patient.mrn in referenced) == patient.has_data
        if not patient.has_data:
            assert patient.labs == {"MG": [], "K": [], "GLU": [], "A1C": []}


def test_patient_resources_have_the_upstream_shape(stored: list[dict[str, Any]]) -> None:
    for resource in takewhile(lambda r: r["resourceType"] == "Patient", stored):
        assert re.fullmatch(r"S\d{7}", resource["id"])
        assert resource["meta"]["versionId"] == "1"
        assert re.fullmatch(r"#[A-Za-z0-9]{16}", resource["meta"]["source"])
        assert [e["url"].rsplit("/", 1)[1] for e in resource["extension"]] == ["us-core-race", "us-core-ethnicity"]
        identifier = resource["identifier"][0]
        assert identifier["type"]["coding"][0]["code"] == "MR" and identifier["value"] == resource["id"]
        assert resource["name"][0]["use"] == "official" and resource["name"][0]["given"]
        assert re.fullmatch(r"\d{3}-\d{3}-\d{4}", resource["telecom"][0]["value"])
        assert re.fullmatch(r"[A-Z]{2}", resource["address"][0]["state"])
        assert resource["gender"] in ("female", "male")


def test_clinical_resource_ids_are_unique_numeric_strings(stored: list[dict[str, Any]]) -> None:
    ids = [r["id"] for r in stored if r["resourceType"] != "Patient"]
    assert all(i.isdigit() for i in ids)
    assert len(set(ids)) == len(ids)


def test_labs_use_the_task_units(stored: list[dict[str, Any]]) -> None:
    units = {"MG": "mg/dL", "K": "mmol/L", "GLU": "mg/dL", "A1C": "%"}
    for resource in stored:
        code = resource.get("code", {}).get("coding", [{}])[0].get("code")
        if resource["resourceType"] == "Observation" and code in units:
            assert resource["valueQuantity"]["unit"] == units[code]
            assert resource["category"][0]["coding"][0]["code"] == "laboratory"


def test_blood_pressure_is_a_string_like_the_task3_example(stored: list[dict[str, Any]]) -> None:
    pressures = [r["valueString"] for r in stored if r["resourceType"] == "Observation" and r["code"]["text"] == "BP"]
    assert pressures
    assert all(re.fullmatch(r"\d{2,3}/\d{2,3} mmHg", p) for p in pressures)


def test_values_carry_at_most_two_decimals(stored: list[dict[str, Any]]) -> None:
    for resource in stored:
        if "valueQuantity" in resource:
            value = resource["valueQuantity"]["value"]
            assert round(value, 2) == value


def test_every_timestamp_is_at_or_before_now(stored: list[dict[str, Any]]) -> None:
    stamps = [s for r in stored for s in walk_strings(r) if ISO_DATETIME.match(s)]
    assert len(stamps) > len(stored)
    assert max(datetime.fromisoformat(s) for s in stamps) <= NOW


def test_histories_span_more_than_a_year_with_several_labs_per_inpatient_day(
    labs_by_patient: dict[str, dict[str, Readings]],
) -> None:
    times = [t for labs in labs_by_patient.values() for readings in labs.values() for t, _ in readings]
    assert NOW - min(times) > timedelta(days=365)
    busiest_day = max(
        len({t for readings in labs.values() for t, _ in readings if t.date() == day})
        for labs in labs_by_patient.values()
        for day in {t.date() for readings in labs.values() for t, _ in readings}
    )
    assert busiest_day >= 3


def test_record_labs_list_exactly_the_stored_task_values_in_storage_order(
    population: Population, labs_by_patient: dict[str, dict[str, Readings]]
) -> None:
    for patient in population.patients:
        for code in ("MG", "K", "GLU", "A1C"):
            assert patient.labs[code] == labs_by_patient.get(patient.mrn, {}).get(code, []), (patient.mrn, code)


def test_storage_order_is_not_chronological_for_most_patients(labs_by_patient: dict[str, dict[str, Readings]]) -> None:
    histories = [labs["K"] for labs in labs_by_patient.values() if len(labs["K"]) >= 3]
    unsorted = [h for h in histories if [t for t, _ in h] != sorted(t for t, _ in h)]
    assert len(unsorted) >= len(histories) / 2


@pytest.mark.parametrize(
    ("code", "tiers"),
    [
        ("MG", ("missing", "normal", "mild", "moderate", "severe")),
        ("K", ("missing", "low", "normal")),
        ("GLU", ("within_24h", "older_only", "none")),
        ("A1C", ("missing", "stale", "recent")),
    ],
)
def test_every_branch_has_at_least_three_patients_at_small_scale(
    population: Population, labs_by_patient: dict[str, dict[str, Readings]], code: str, tiers: tuple[str, ...]
) -> None:
    _, tier_of = TIER_OF[code]
    counts = {tier: 0 for tier in tiers}
    for patient in population.patients:
        if patient.has_data:
            counts[tier_of(labs_by_patient[patient.mrn][code])] += 1
    assert min(counts.values()) >= 3, counts


def test_the_stored_data_realises_each_patients_profile(
    population: Population, labs_by_patient: dict[str, dict[str, Readings]]
) -> None:
    for patient in population.patients:
        profile = population.profile_of(patient.mrn)
        if profile is None:
            continue
        for code, (dimension, tier_of) in TIER_OF.items():
            assert tier_of(labs_by_patient[patient.mrn][code]) == profile.tier(dimension), (patient.mrn, code)


def test_glucose_within_24h_means_several_values(population: Population) -> None:
    for patient in population.patients:
        within = [r for r in patient.labs["GLU"] if r[0] >= WINDOW_START]
        assert not within or len(within) >= 3


def _latest_values(population: Population, code: str, since: datetime | None = None) -> list[tuple[datetime, float]]:
    found = []
    for patient in population.patients:
        newest = latest([r for r in patient.labs[code] if since is None or r[0] >= since])
        if newest is not None:
            found.append(newest)
    return found


def test_magnesium_boundaries_are_present(population: Population) -> None:
    recent = _latest_values(population, "MG", WINDOW_START)
    assert {1.9, 1.5, 1.0} <= {value for _, value in recent}
    assert WINDOW_START in {moment for moment, _ in recent}
    just_too_old = WINDOW_START - timedelta(minutes=1)
    assert any(
        latest(p.labs["MG"]) == (just_too_old, latest(p.labs["MG"])[1]) for p in population.patients if p.labs["MG"]
    )


def test_potassium_exactly_3_5_is_present_as_a_latest_value(population: Population) -> None:
    assert 3.5 in {value for _, value in _latest_values(population, "K")}


def test_glucose_at_exactly_24h_and_just_before_are_present(population: Population) -> None:
    moments = {moment for p in population.patients for moment, _ in p.labs["GLU"]}
    assert WINDOW_START in moments
    assert WINDOW_START - timedelta(minutes=1) in moments


def test_hba1c_exactly_one_year_old_and_a_minute_older_are_latest_values(population: Population) -> None:
    moments = {moment for moment, _ in _latest_values(population, "A1C")}
    assert YEAR_AGO in moments
    assert YEAR_AGO - timedelta(minutes=1) in moments


def test_no_latest_value_ties_so_latest_is_unambiguous(population: Population) -> None:
    for patient in population.patients:
        for readings in patient.labs.values():
            moments = [t for t, _ in readings]
            assert len(moments) == len(set(moments))


def test_stats_command_prints_counts_per_type_and_the_total(
    capsys: pytest.CaptureFixture[str], stored: list[dict[str, Any]]
) -> None:
    from medbench.ehr.__main__ import main

    main(["stats", "--scale", "small", "--seed", "0"])
    out = capsys.readouterr().out
    assert re.search(rf"total\s+{len(stored)}\n", out)
    assert re.search(r"Observation \(vital-signs\)\s+\d+", out)
