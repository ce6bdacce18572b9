"""The corrected grader mode: each GRADING.md QUIRK fixed as the README (Graders, `corrected`) states, nothing else changed."""

import pytest

from helpers.grading_fakes import (
    API,
    SBAR,
    FakeGateway,
    a1c_order,
    bp_payload,
    bundle,
    changed,
    labs,
    magnesium_order,
    make_task,
    obs_url,
    observation,
    post,
    potassium_lab,
    potassium_order,
    referral,
    transcript,
)
from medbench.grading import Verdict, grade

NO_DATA = FakeGateway()
MG_LOW = labs("MG", ("2023-11-13T08:00:00+00:00", 1.2))
K_LOW = labs("K", ("2023-11-12T08:00:00+00:00", 3.0))


def verdicts(task, outcome, gateway=NO_DATA) -> tuple[bool, bool]:
    """(official, corrected) decisions on the same transcript."""
    return (
        grade(task, outcome, gateway, API, mode="official").correct,
        grade(task, outcome, gateway, API, mode="corrected").correct,
    )


# --- has_post counts only accepted POSTs ----------------------------------------------------------


def test_word_post_in_prose_no_longer_fails_a_read_only_task():
    outcome = transcript(("I will not POST anything.", "ignored"), finish='["S1"]')
    assert verdicts(make_task(1, sol=["S1"]), outcome) == (False, True)


def test_rejected_post_no_longer_fails_a_read_only_task():
    outcome = transcript(f"POST {API}Observation\n{{broken", finish='["S1"]')
    assert verdicts(make_task(1, sol=["S1"]), outcome) == (False, True)


def test_accepted_post_still_fails_a_read_only_task():
    outcome = transcript(post("Observation", {"resourceType": "Observation"}), finish='["S1"]')
    verdict = grade(make_task(1, sol=["S1"]), outcome, NO_DATA, API, mode="corrected")
    assert verdict == Verdict(
        False, "task1: agent turn 1 POSTed to http://localhost:8080/fhir/Observation, but task1 is read-only"
    )


def test_finish_mentioning_post_no_longer_crashes_the_write_graders():
    outcome = transcript(post("Observation", bp_payload()), finish='["POST done"]')
    assert verdicts(make_task(3), outcome) == (False, True)


def test_fenced_post_is_graded_as_the_loop_accepted_it():
    outcome = transcript("```\n" + post("Observation", bp_payload()) + "\n```")
    assert verdicts(make_task(3), outcome) == (False, True)


# --- task3 value from the instruction -----------------------------------------------------------


def test_task3_value_is_read_from_the_instruction():
    task = make_task(
        3, instruction='I just measured the blood pressure ..., and it is "132/84 mmHg". Help me record it.'
    )
    assert verdicts(task, transcript(post("Observation", bp_payload("132/84 mmHg")))) == (False, True)
    assert verdicts(task, transcript(post("Observation", bp_payload("118/77 mmHg")))) == (True, False)


def test_task3_without_a_value_in_the_instruction_falls_back_to_sol_then_constant():
    assert verdicts(make_task(3, sol=["120/80 mmHg"]), transcript(post("Observation", bp_payload("120/80 mmHg")))) == (
        True,
        True,
    )
    assert verdicts(make_task(3), transcript(post("Observation", bp_payload()))) == (True, True)


# --- task5 route, dose and rate -------------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        {"text": "IV"},
        {"coding": [{"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}]},
        "iv",
        " IV ",
    ],
)
def test_task5_route_may_be_a_codeable_concept_or_any_case(route):
    payload = changed(magnesium_order(2, 2), ("dosageInstruction", 0, "route"), route)
    assert verdicts(make_task(5), transcript(post("MedicationRequest", payload)), MG_LOW) == (False, True)


def test_task5_wrong_route_is_still_incorrect():
    payload = changed(magnesium_order(2, 2), ("dosageInstruction", 0, "route"), {"text": "oral"})
    assert verdicts(make_task(5), transcript(post("MedicationRequest", payload)), MG_LOW) == (False, False)


def test_task5_rate_may_be_a_real_rate_in_g_per_h():
    payload = changed(
        magnesium_order(2, 2), ("dosageInstruction", 0, "doseAndRate", 0, "rateQuantity"), {"value": 1, "unit": "g/h"}
    )
    assert verdicts(make_task(5), transcript(post("MedicationRequest", payload)), MG_LOW) == (False, True)


def test_task5_rate_may_be_a_rate_ratio_of_dose_over_hours():
    dose_and_rate = {
        "doseQuantity": {"value": 2, "unit": "g"},
        "rateRatio": {"numerator": {"value": 2, "unit": "g"}, "denominator": {"value": 2, "unit": "h"}},
    }
    payload = changed(magnesium_order(2, 2), ("dosageInstruction", 0, "doseAndRate", 0), dose_and_rate)
    assert verdicts(make_task(5), transcript(post("MedicationRequest", payload)), MG_LOW) == (False, True)


def test_task5_official_rate_form_is_still_accepted():
    assert verdicts(make_task(5), transcript(post("MedicationRequest", magnesium_order(2, 2))), MG_LOW) == (True, True)


def test_task5_wrong_tier_is_still_incorrect_in_every_rate_form():
    real_rate = changed(
        magnesium_order(1, 1), ("dosageInstruction", 0, "doseAndRate", 0, "rateQuantity"), {"value": 1, "unit": "g/h"}
    )
    assert verdicts(make_task(5), transcript(post("MedicationRequest", real_rate)), MG_LOW) == (False, False)


def test_task5_quantities_may_carry_ucum_system_and_code():
    payload = changed(
        magnesium_order(2, 2),
        ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity"),
        {"value": 2, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"},
    )
    assert verdicts(make_task(5), transcript(post("MedicationRequest", payload)), MG_LOW) == (False, True)


# --- task8 note --------------------------------------------------------------------------------


def test_task8_note_may_be_the_fhir_list_of_annotations():
    outcome = transcript(post("ServiceRequest", referral([{"text": "Ortho referral."}, {"text": SBAR}])))
    assert verdicts(make_task(8), outcome) == (False, True)


def test_task8_note_without_the_referral_text_is_still_incorrect():
    assert verdicts(make_task(8), transcript(post("ServiceRequest", referral([{"text": "Ortho referral."}])))) == (
        False,
        False,
    )


# --- task9 route --------------------------------------------------------------------------------


def test_task9_route_may_be_a_codeable_concept():
    med = changed(potassium_order(50), ("dosageInstruction", 0, "route"), {"text": "Oral"})
    outcome = transcript(post("MedicationRequest", med), post("ServiceRequest", potassium_lab()))
    assert verdicts(make_task(9), outcome, K_LOW) == (False, True)


# --- paging -------------------------------------------------------------------------------------


def test_corrected_mode_follows_next_links_so_a_capped_page_size_does_not_change_the_answer():
    next_url = f"{API}?_getpages=abc&_getpagesoffset=1"
    gateway = FakeGateway(
        {
            obs_url("GLU"): bundle([observation("2023-11-01T08:00:00+00:00", 90)], next_url=next_url),
            next_url: bundle([observation("2023-11-12T08:00:00+00:00", 120)]),
        }
    )
    assert verdicts(make_task(7), transcript(finish="[120]"), gateway) == (False, True)
    assert verdicts(make_task(7), transcript(finish="[90]"), gateway) == (True, False)


# --- unchanged decisions ------------------------------------------------------------------------


def test_decisions_without_quirks_are_the_same_in_both_modes():
    stale = labs("A1C", ("2021-01-01T08:00:00+00:00", 7.9))
    assert verdicts(make_task(10), transcript(post("ServiceRequest", a1c_order()), finish="[-1]"), stale) == (
        False,
        False,
    )
    assert verdicts(make_task(10), transcript(post("ServiceRequest", a1c_order()), finish="[]"), stale) == (True, True)
    assert verdicts(make_task(4), transcript(finish="[1.2]"), MG_LOW) == (True, True)
    assert verdicts(make_task(5), transcript(finish="[1.2]"), MG_LOW) == (False, False)


def test_corrected_mode_keeps_an_errored_attempt_incorrect_even_after_a_correct_post():
    outcome = transcript(post("Observation", bp_payload()), finish="[]", status="error")
    outcome.history.pop()  # the crash came before any FINISH
    outcome.result, outcome.error_source = None, "harness"
    assert grade(make_task(3), outcome, NO_DATA, API, mode="corrected") == Verdict(False, "error")
    assert grade(make_task(3), outcome, NO_DATA, API, mode="official") == Verdict(True)


def test_corrected_reason_for_a_read_only_task_names_the_accepted_post_only():
    outcome = transcript(
        f"GET {API}Patient?name=POST", post("Observation", {"resourceType": "Observation"}), finish='["S1"]'
    )
    verdict = grade(make_task(1, sol=["S1"]), outcome, NO_DATA, API, mode="corrected")
    assert (
        verdict.reason == "task1: agent turn 2 POSTed to http://localhost:8080/fhir/Observation, but task1 is read-only"
    )
