"""Graders against the real embedded FHIR server over the synthetic EHR (small scale).

The expected answers come from the population's own record of what it stored
(``PatientRecord.labs``, ``birth_date``), not from the server, so these tests catch a grader
and a server that disagree about order, paging, time format or values.
"""

from datetime import datetime, timedelta

import pytest

from helpers.grading_fakes import (
    FakeOutcome,
    magnesium_order,
    post,
    potassium_lab,
    potassium_order,
    transcript,
)
from medbench.clock import NOW
from medbench.ehr.population import PatientRecord, build_population
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.environment.provision import embedded_server
from medbench.grading import MODES, grade
from medbench.tasks.task import Task

API = DEFAULT_DISPLAY_BASE


@pytest.fixture(scope="module")
def population():
    return build_population(seed=0, scale="small")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    server = embedded_server(seed=0, scale="small", cache_dir=tmp_path_factory.mktemp("cache"))
    with server, FhirGateway(server.base_url, API) as gw:
        yield gw


def data_patients(population, limit: int = 12) -> list[PatientRecord]:
    """The first data patients (each grade is a live query; a dozen covers every branch here)."""
    return [p for p in population.patients if p.has_data][:limit]


def latest(readings):
    """Greatest time, first seen on ties (the stored order is the server order)."""
    best = None
    for time, value in readings:
        if best is None or time > best[0]:
            best = (time, value)
    return best


def recent(readings):
    return [(t, v) for t, v in readings if t >= NOW - timedelta(hours=24)]


def task(category: int, mrn: str) -> Task:
    return Task(id=f"task{category}_1", category=category, instruction="", context="", eval_MRN=mrn)


def both_modes(t: Task, outcome: FakeOutcome, gateway) -> set[bool]:
    return {grade(t, outcome, gateway, API, mode).correct for mode in MODES}


def test_task2_age_from_the_stored_birth_date(population, gateway):
    for patient in population.patients[:8]:
        b = patient.birth_date
        age = NOW.year - b.year - ((NOW.month, NOW.day) < (b.month, b.day))
        assert both_modes(task(2, patient.mrn), transcript(finish=f"[{age}]"), gateway) == {True}, patient.mrn
        assert both_modes(task(2, patient.mrn), transcript(finish=f"[{age + 1}]"), gateway) == {False}, patient.mrn


def test_task4_and_task7_answers_follow_the_stored_values(population, gateway):
    for patient in data_patients(population):
        mg = latest(recent(patient.labs["MG"]))
        glu = latest(patient.labs["GLU"])
        mg_answer = mg[1] if mg else -1
        glu_answer = glu[1] if glu else -1
        assert both_modes(task(4, patient.mrn), transcript(finish=f"[{mg_answer}]"), gateway) == {True}, patient.mrn
        assert not grade(task(4, patient.mrn), transcript(finish=f"[{mg_answer + 0.5}]"), gateway, API).correct
        assert both_modes(task(7, patient.mrn), transcript(finish=f"[{glu_answer}]"), gateway) == {True}, patient.mrn


def test_task6_mean_glucose_over_24h(population, gateway):
    for patient in data_patients(population):
        values = [v for _, v in recent(patient.labs["GLU"])]
        mean = sum(values) / len(values) if values else -1
        assert both_modes(task(6, patient.mrn), transcript(finish=f"[{mean}]"), gateway) == {True}, patient.mrn


def test_task10_answer_carries_the_time_exactly_as_stored(population, gateway):
    graded = 0
    for patient in data_patients(population):
        a1c = latest(patient.labs["A1C"])
        if a1c is None or a1c[0] < datetime.fromisoformat("2022-11-13T10:15:00+00:00"):
            continue
        answer = f'[{a1c[1]}, "{a1c[0].isoformat()}"]'
        assert both_modes(task(10, patient.mrn), transcript(finish=answer), gateway) == {True}, patient.mrn
        graded += 1
    assert graded > 0, "no patient with a recent HbA1c among the first data patients"


def test_task5_and_task9_orders_for_low_patients_are_correct(population, gateway):
    graded = 0
    for patient in data_patients(population, limit=30):
        mg = latest(recent(patient.labs["MG"]))
        if mg and mg[1] <= 1.9:
            dose = 4 if mg[1] < 1 else 2 if mg[1] < 1.5 else 1
            payload = magnesium_order(dose, dose) | {"subject": {"reference": f"Patient/{patient.mrn}"}}
            outcome = transcript(post("MedicationRequest", payload, base=API), finish=f"[{mg[1]}]")
            assert both_modes(task(5, patient.mrn), outcome, gateway) == {True}, patient.mrn
            graded += 1
        k = latest(patient.labs["K"])
        if k and k[1] < 3.5:
            subject = {"subject": {"reference": f"Patient/{patient.mrn}"}}
            med = potassium_order((3.5 - k[1]) / 0.1 * 10) | subject
            outcome = transcript(
                post("MedicationRequest", med, base=API),
                post("ServiceRequest", potassium_lab() | subject, base=API),
                finish="[]",
            )
            assert both_modes(task(9, patient.mrn), outcome, gateway) == {True}, patient.mrn
            graded += 1
    assert graded > 0, "the small population has no low magnesium or potassium patient to grade"
