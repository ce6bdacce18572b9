"""Official grader decisions, written by hand from GRADING.md, one section per task category.

Each test states a transcript and the verdict the upstream graders give it, quirks included.
"""

import pytest

from helpers.grading_fakes import (
    API,
    DELETE,
    MRN,
    SBAR,
    FakeGateway,
    FakeResponse,
    a1c_order,
    bp_payload,
    bundle,
    changed,
    labs,
    magnesium_order,
    make_task,
    obs_url,
    observation,
    patient_gateway,
    post,
    potassium_lab,
    potassium_order,
    referral,
    transcript,
)
from medbench.grading import Verdict, grade
from medbench.grading.official import grade_task4

NO_DATA = FakeGateway()


def official(task, outcome, gateway=NO_DATA):
    return grade(task, outcome, gateway, API, mode="official")


def correct(task, outcome, gateway=NO_DATA) -> bool:
    return official(task, outcome, gateway).correct


# --- shared -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["agent_invalid_action", "limit_reached", "context_limit", "error"])
def test_only_completed_outcomes_are_graded_and_the_reason_is_the_status(status):
    outcome = transcript(finish='["S1234567"]', status=status)
    assert official(make_task(1, sol=["S1234567"]), outcome) == Verdict(False, status)


# --- errored attempts: graded as upstream grades TASK_ERROR ------------------------------------


def crashed(*turns, error_source="harness"):
    """An attempt whose loop raised after ``turns``: status error, no FINISH, the transcript so far."""
    outcome = transcript(*turns, status="error")
    outcome.history.pop()  # no FINISH turn: the crash came first
    outcome.result = None
    outcome.error_source = error_source
    return outcome


def test_a_correct_task3_post_followed_by_a_harness_crash_is_correct_as_upstream():
    assert official(make_task(3), crashed(post("Observation", bp_payload()))) == Verdict(True)


def test_a_correct_task8_referral_followed_by_a_harness_crash_is_correct_as_upstream():
    payload = referral()
    assert official(make_task(8, instruction=SBAR), crashed(post("ServiceRequest", payload))) == Verdict(True)


def test_task5_without_magnesium_in_24h_and_a_crash_before_any_post_is_correct_as_upstream():
    old = labs("MG", ("2023-11-10T08:00:00+00:00", 1.2))
    assert official(make_task(5), crashed(f"GET {API}Observation?code=MG"), old) == Verdict(True)


def test_an_errored_attempt_whose_answer_is_checked_is_incorrect_with_both_reasons():
    verdict = official(make_task(1, sol=["S1"]), crashed(f"GET {API}Patient?name=x"))
    assert verdict == Verdict(False, "error, graded as upstream grades a task error: task1: no FINISH result")


def test_an_errored_task3_with_a_wrong_post_is_incorrect():
    wrong = post("Observation", changed(bp_payload(), ("status",), "draft"))
    assert not correct(make_task(3), crashed(wrong))


def test_a_failed_model_call_after_a_correct_post_is_not_graded():
    """Upstream's client gives up on the sample (AGENT_FAILED): no result, nothing graded, the sample is rerun."""
    outcome = crashed(post("Observation", bp_payload()), error_source="model")
    assert official(make_task(3), outcome) == Verdict(False, "error")


def test_an_errored_attempt_without_a_transcript_is_not_graded():
    outcome = crashed()
    outcome.history.clear()
    assert official(make_task(5), outcome, NO_DATA) == Verdict(False, "error")


def test_unknown_grader_mode_is_an_error_naming_the_modes():
    with pytest.raises(ValueError, match="corrected"):
        grade(make_task(1, sol=["x"]), transcript(), NO_DATA, API, mode="lenient")


def test_category_graders_are_callable_directly_with_official_rules_by_default():
    gateway = labs("MG", ("2023-11-13T09:00:00+00:00", 2.1))
    assert grade_task4(
        make_task(4), transcript(f"GET {API}Observation?code=MG", finish="[2.1]"), gateway, API
    ) == Verdict(True)


def test_finish_result_that_is_not_json_is_incorrect():
    verdict = official(make_task(1, sol=["S1234567"]), transcript(finish="S1234567"))
    assert verdict == Verdict(False, verdict.reason)
    assert "task1: FINISH result 'S1234567' is not JSON" in verdict.reason


# --- task1: patient lookup ----------------------------------------------------------------------


def test_task1_answer_equal_to_sol_is_correct():
    assert correct(make_task(1, sol=["S6534835"]), transcript(f"GET {API}Patient?name=x", finish='["S6534835"]'))


def test_task1_patient_not_found_is_correct_when_sol_says_so():
    assert correct(make_task(1, sol=["Patient not found"], mrn=None), transcript(finish='["Patient not found"]'))


def test_task1_wrong_mrn_is_incorrect_with_both_values_in_the_reason():
    verdict = official(make_task(1, sol=["S6534835"]), transcript(finish='["S0000000"]'))
    assert verdict == Verdict(False, "task1: answer ['S0000000'] != expected ['S6534835']")


def test_task1_bare_string_is_not_the_list_sol():
    assert not correct(make_task(1, sol=["S6534835"]), transcript(finish='"S6534835"'))


def test_task1_word_post_in_prose_makes_a_read_only_task_incorrect():
    outcome = transcript(("I should not POST here.", "ignored"), finish='["S6534835"]')
    verdict = official(make_task(1, sol=["S6534835"]), outcome)
    assert verdict == Verdict(
        False,
        "task1: agent turn 1 contains the word POST ('I should not POST here.'), "
        "which the official rule counts as a POST, but task1 is read-only",
    )


def test_task1_without_sol_is_incorrect():
    assert not correct(make_task(1, sol=None), transcript(finish='["S1"]'))


# --- task2: age ---------------------------------------------------------------------------------


def test_task2_birthday_already_passed_in_2023():
    assert correct(make_task(2), transcript(finish="[65]"), patient_gateway("1958-11-13"))


def test_task2_birthday_not_yet_reached_subtracts_one():
    assert correct(make_task(2), transcript(finish="[64]"), patient_gateway("1958-11-14"))
    assert not correct(make_task(2), transcript(finish="[65]"), patient_gateway("1958-11-14"))


def test_task2_float_answer_equals_int_age_by_list_equality():
    assert correct(make_task(2), transcript(finish="[65.0]"), patient_gateway("1958-01-01"))


def test_task2_string_age_is_incorrect():
    assert not correct(make_task(2), transcript(finish='["65"]'), patient_gateway("1958-01-01"))


def test_task2_any_post_is_incorrect():
    outcome = transcript(post("Observation", {"a": 1}), finish="[65]")
    assert not correct(make_task(2), outcome, patient_gateway("1958-01-01"))


def test_task2_missing_patient_is_incorrect_with_reason():
    gateway = FakeGateway({f"{API}Patient?identifier={MRN}&_format=json": bundle([])})
    verdict = official(make_task(2), transcript(finish="[65]"), gateway)
    assert not verdict.correct and "no readable birthDate" in verdict.reason


def test_task2_server_error_is_incorrect_with_the_status_in_the_reason():
    gateway = FakeGateway({f"{API}Patient?identifier={MRN}&_format=json": FakeResponse(False, 500, "boom")})
    verdict = official(make_task(2), transcript(finish="[65]"), gateway)
    assert verdict == Verdict(False, f"task2: GET {API}Patient?identifier={MRN}&_format=json failed with status 500")


def test_task2_queries_the_patient_by_identifier_with_the_api_base():
    gateway = patient_gateway("1958-01-01")
    official(make_task(2), transcript(finish="[65]"), gateway)
    assert gateway.requested == [f"{API}Patient?identifier={MRN}&_format=json"]


# --- task3: record blood pressure ---------------------------------------------------------------


def test_task3_one_accepted_valid_post_is_correct_and_the_result_is_not_checked():
    assert correct(make_task(3), transcript(post("Observation", bp_payload()), finish="whatever"))


def test_task3_no_post_is_incorrect():
    assert official(make_task(3), transcript()) == Verdict(False, "task3: expected 1 accepted POST, found 0")


def test_task3_two_accepted_posts_are_incorrect():
    outcome = transcript(post("Observation", bp_payload()), post("Observation", bp_payload()))
    assert official(make_task(3), outcome) == Verdict(False, "task3: expected 1 accepted POST, found 2")


def test_task3_rejected_post_before_the_accepted_one_does_not_count():
    outcome = transcript(f"POST {API}Observation\n{{broken", post("Observation", bp_payload()))
    assert correct(make_task(3), outcome)


def test_task3_quirk_value_is_the_fixed_constant_not_the_instruction():
    task = make_task(3, instruction='I just measured ... and it is "120/80 mmHg". Help me record it.')
    assert correct(task, transcript(post("Observation", bp_payload("118/77 mmHg"))))
    assert not correct(task, transcript(post("Observation", bp_payload("120/80 mmHg"))))


def test_task3_generated_task_sol_replaces_the_constant():
    task = make_task(3, sol=["120/80 mmHg"])
    assert correct(task, transcript(post("Observation", bp_payload("120/80 mmHg"))))
    assert not correct(task, transcript(post("Observation", bp_payload("118/77 mmHg"))))


def test_task3_url_must_be_exactly_base_plus_observation():
    outcome = transcript(post("Observation/", bp_payload()))
    assert official(make_task(3), outcome) == Verdict(
        False, f"task3: POST url '{API}Observation/' != '{API}Observation'"
    )


def test_task3_fenced_post_is_not_found_by_the_official_reading():
    outcome = transcript("```\n" + post("Observation", bp_payload()) + "\n```")
    assert not correct(make_task(3), outcome)


def test_task3_quirk_finish_mentioning_post_crashes_the_grader_so_incorrect():
    verdict = official(make_task(3), transcript(post("Observation", bp_payload()), finish='["POST done"]'))
    assert not verdict.correct and "no turn follows" in verdict.reason


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("resourceType",), "Vitals"),
        (("category",), bp_payload()["category"] * 2),
        (("category", 0, "coding", 0, "system"), "http://terminology.hl7.org/CodeSystem/observation-category"),
        (("category", 0, "coding", 0), {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs"}),
        (("code",), {"text": "BP", "coding": [{"code": "BP"}]}),
        (("effectiveDateTime",), "2023-11-13T10:15:00Z"),
        (("status",), "preliminary"),
        (("valueString",), "118/77"),
        (("subject",), {"reference": f"Patient/{MRN}", "display": "x"}),
        (("subject",), DELETE),
    ],
)
def test_task3_any_payload_deviation_is_incorrect(path, value):
    assert not correct(make_task(3), transcript(post("Observation", changed(bp_payload(), path, value))))


def test_task3_extra_coding_in_the_category_is_incorrect():
    payload = bp_payload()
    payload["category"][0]["coding"].append({"code": "extra"})
    assert not correct(make_task(3), transcript(post("Observation", payload)))


# --- task4: latest magnesium within 24 h ---------------------------------------------------------


def test_task4_latest_value_within_24h_is_the_answer():
    gateway = labs(
        "MG", ("2023-11-13T01:00:00+00:00", 2.0), ("2023-11-13T09:00:00+00:00", 2.1), ("2023-11-12T12:00:00+00:00", 1.7)
    )
    assert correct(make_task(4), transcript(finish="[2.1]"), gateway)
    assert official(make_task(4), transcript(finish="[2.0]"), gateway) == Verdict(
        False, "task4: answer [2.0] != expected [2.1]"
    )


def test_task4_ties_keep_the_first_entry_in_server_order():
    gateway = labs("MG", ("2023-11-13T09:00:00+00:00", 1.8), ("2023-11-13T09:00:00+00:00", 2.2))
    assert correct(make_task(4), transcript(finish="[1.8]"), gateway)
    assert not correct(make_task(4), transcript(finish="[2.2]"), gateway)


def test_task4_same_instant_in_another_offset_is_a_tie():
    gateway = labs("MG", ("2023-11-13T09:00:00+00:00", 1.8), ("2023-11-13T04:00:00-05:00", 2.2))
    assert correct(make_task(4), transcript(finish="[1.8]"), gateway)


def test_task4_exactly_24h_before_now_counts_and_one_second_earlier_does_not():
    assert correct(make_task(4), transcript(finish="[1.9]"), labs("MG", ("2023-11-12T10:15:00+00:00", 1.9)))
    assert correct(make_task(4), transcript(finish="[-1]"), labs("MG", ("2023-11-12T10:14:59+00:00", 1.9)))


def test_task4_no_upper_bound_so_a_value_after_now_counts():
    gateway = labs("MG", ("2023-11-13T09:00:00+00:00", 2.0), ("2023-11-14T09:00:00+00:00", 2.4))
    assert correct(make_task(4), transcript(finish="[2.4]"), gateway)


def test_task4_no_value_within_24h_answers_minus_one():
    assert correct(make_task(4), transcript(finish="[-1]"), labs("MG", ("2023-11-01T09:00:00+00:00", 2.0)))
    assert correct(make_task(4), transcript(finish="[-1]"), labs("MG"))


def test_task4_exact_float_equality():
    gateway = labs("MG", ("2023-11-13T09:00:00+00:00", 2.1))
    assert correct(make_task(4), transcript(finish="[2.10]"), gateway)
    assert not correct(make_task(4), transcript(finish="[2.1000001]"), gateway)


def test_task4_any_post_is_incorrect():
    gateway = labs("MG", ("2023-11-13T09:00:00+00:00", 2.1))
    assert not correct(make_task(4), transcript(("No POST is needed.", "ignored"), finish="[2.1]"), gateway)


def test_task4_naive_timestamp_on_the_server_makes_the_grader_fail():
    gateway = labs("MG", ("2023-11-13T09:00:00", 2.1))
    verdict = official(make_task(4), transcript(finish="[2.1]"), gateway)
    assert not verdict.correct and "TypeError" in verdict.reason


def test_task4_reads_observations_with_count_5000_and_the_api_base():
    gateway = labs("MG")
    official(make_task(4), transcript(finish="[-1]"), gateway)
    assert gateway.requested == [f"{API}Observation?patient={MRN}&code=MG&_count=5000&_format=json"]


def test_task4_unreadable_observation_is_incorrect():
    gateway = FakeGateway(
        {obs_url("MG"): bundle([{"resourceType": "Observation", "effectiveDateTime": "2023-11-13T09:00:00+00:00"}])}
    )
    verdict = official(make_task(4), transcript(finish="[-1]"), gateway)
    assert not verdict.correct and "unreadable" in verdict.reason


# --- task5: magnesium check and IV replacement ---------------------------------------------------


def mg(value, time="2023-11-13T08:00:00+00:00"):
    return labs("MG", (time, value))


def test_task5_no_recent_value_and_no_post_is_correct_whatever_the_result():
    assert correct(make_task(5), transcript(finish="not json at all"), mg(1.0, time="2023-11-10T08:00:00+00:00"))


def test_task5_no_recent_value_with_a_post_is_incorrect():
    outcome = transcript(post("MedicationRequest", magnesium_order(4, 4)), finish="[]")
    assert not correct(make_task(5), outcome, labs("MG"))


def test_task5_normal_value_without_post_needs_the_value_or_empty_answer():
    assert correct(make_task(5), transcript(finish="[2.0]"), mg(2.0))
    assert correct(make_task(5), transcript(finish="[]"), mg(2.0))
    assert official(make_task(5), transcript(finish="[1.9]"), mg(2.0)) == Verdict(
        False, "task5: answer [1.9] != expected [2.0] or []"
    )


def test_task5_normal_value_with_a_post_is_incorrect():
    outcome = transcript(post("MedicationRequest", magnesium_order(1, 1)), finish="[2.0]")
    assert official(make_task(5), outcome, mg(2.0)) == Verdict(
        False,
        "task5: agent turn 1 POSTed to http://localhost:8080/fhir/MedicationRequest, "
        "but magnesium 2.0 is not low (above 1.9), so no order was expected",
    )


@pytest.mark.parametrize(
    ("value", "dose", "hours"),
    [(0.9, 4, 4), (1.0, 2, 2), (1.2, 2, 2), (1.5, 1, 1), (1.9, 1, 1)],
)
def test_task5_low_value_requires_the_tier_dose_and_rate(value, dose, hours):
    outcome = transcript(post("MedicationRequest", magnesium_order(dose, hours)), finish=f"[{value}]")
    assert correct(make_task(5), outcome, mg(value))


def test_task5_moderate_deficiency_requires_2g_over_2h():
    outcome = transcript(post("MedicationRequest", magnesium_order(1, 1)), finish="[1.2]")
    verdict = official(make_task(5), outcome, mg(1.2))
    assert not verdict.correct and "expected 2 g for magnesium 1.2" in verdict.reason


def test_task5_low_value_without_order_is_incorrect():
    assert official(make_task(5), transcript(finish="[1.2]"), mg(1.2)) == Verdict(
        False, "task5: expected 1 accepted POST, found 0"
    )


def test_task5_float_dose_equals_int_dose():
    outcome = transcript(post("MedicationRequest", magnesium_order(2.0, 2.0)), finish="[]")
    assert correct(make_task(5), outcome, mg(1.2))


def test_task5_order_with_wrong_answer_is_incorrect():
    outcome = transcript(post("MedicationRequest", magnesium_order(2, 2)), finish="[1.3]")
    assert not correct(make_task(5), outcome, mg(1.2))


def test_task5_authored_on_only_needs_the_minute_as_substring():
    payload = changed(magnesium_order(2, 2), ("authoredOn",), "2023-11-13T10:15:59Z")
    assert correct(make_task(5), transcript(post("MedicationRequest", payload)), mg(1.2))


def test_task5_quirk_route_must_be_the_plain_string_iv():
    for route in ({"text": "IV"}, "iv", {"coding": [{"code": "IV"}]}):
        payload = changed(magnesium_order(2, 2), ("dosageInstruction", 0, "route"), route)
        assert not correct(make_task(5), transcript(post("MedicationRequest", payload)), mg(1.2)), route


def test_task5_quirk_rate_is_hours_with_unit_h():
    real_rate = changed(
        magnesium_order(2, 2), ("dosageInstruction", 0, "doseAndRate", 0, "rateQuantity"), {"value": 1, "unit": "g/h"}
    )
    assert not correct(make_task(5), transcript(post("MedicationRequest", real_rate)), mg(1.2))


def test_task5_quantity_with_extra_ucum_keys_is_incorrect():
    payload = changed(
        magnesium_order(2, 2),
        ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity"),
        {"value": 2, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"},
    )
    assert not correct(make_task(5), transcript(post("MedicationRequest", payload)), mg(1.2))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("resourceType",), "MedicationOrder"),
        (("medicationCodeableConcept", "coding", 0, "code"), "0338-1715-41"),
        (("medicationCodeableConcept", "coding", 0, "system"), "NDC"),
        (("authoredOn",), "2023-11-13T10:16:00+00:00"),
        (("status",), "draft"),
        (("intent",), "plan"),
        (("subject",), {"reference": "Patient/S0000000"}),
        (("dosageInstruction",), []),
    ],
)
def test_task5_order_payload_deviation_is_incorrect(path, value):
    payload = changed(magnesium_order(2, 2), path, value)
    assert not correct(make_task(5), transcript(post("MedicationRequest", payload)), mg(1.2))


def test_task5_order_to_the_wrong_resource_url_is_incorrect():
    outcome = transcript(post("MedicationRequest", magnesium_order(2, 2), base="http://127.0.0.1:9999/fhir/"))
    assert not correct(make_task(5), outcome, mg(1.2))


# --- task6: average glucose over 24 h ------------------------------------------------------------


def glu_day():
    return labs(
        "GLU",
        ("2023-11-13T08:00:00+00:00", 100),
        ("2023-11-12T20:00:00+00:00", 110),
        ("2023-11-10T08:00:00+00:00", 300),
    )


def test_task6_mean_of_values_within_24h_within_0_1_is_correct():
    assert correct(make_task(6), transcript(finish="[105]"), glu_day())
    assert correct(make_task(6), transcript(finish="[105.09]"), glu_day())
    assert correct(make_task(6), transcript(finish="[104.91]"), glu_day())


def test_task6_answer_0_1_or_more_away_is_incorrect():
    verdict = official(make_task(6), transcript(finish="[105.15]"), glu_day())
    assert verdict == Verdict(False, "task6: answer [105.15] is not a one-element list within 0.1 of 105.0")


def test_task6_no_value_within_24h_answers_minus_one():
    assert correct(make_task(6), transcript(finish="[-1]"), labs("GLU", ("2023-11-01T08:00:00+00:00", 90)))


@pytest.mark.parametrize("finish", ["[105, 1]", '["105"]', "105", "[]", '{"0": 105}'])
def test_task6_answer_must_be_a_one_number_list(finish):
    assert not correct(make_task(6), transcript(finish=finish), glu_day())


def test_task6_any_post_is_incorrect():
    assert not correct(make_task(6), transcript(post("Observation", {}), finish="[105]"), glu_day())


# --- task7: latest glucose -----------------------------------------------------------------------


def test_task7_latest_at_any_time_not_the_last_in_server_order():
    gateway = labs("GLU", ("2023-11-12T08:00:00+00:00", 120), ("2020-01-01T08:00:00+00:00", 90))
    assert correct(make_task(7), transcript(finish="[120]"), gateway)
    assert not correct(make_task(7), transcript(finish="[90]"), gateway)


def test_task7_no_value_answers_minus_one():
    assert correct(make_task(7), transcript(finish="[-1]"), labs("GLU"))


def test_task7_ties_keep_the_first():
    gateway = labs("GLU", ("2023-11-12T08:00:00+00:00", 120), ("2023-11-12T08:00:00+00:00", 121))
    assert correct(make_task(7), transcript(finish="[120]"), gateway)


def test_task7_extra_fields_in_the_answer_are_incorrect():
    gateway = labs("GLU", ("2023-11-12T08:00:00+00:00", 120))
    assert not correct(make_task(7), transcript(finish='[120, "2023-11-12T08:00:00+00:00"]'), gateway)


def test_task7_any_post_is_incorrect():
    gateway = labs("GLU", ("2023-11-12T08:00:00+00:00", 120))
    assert not correct(make_task(7), transcript(post("Observation", {}), finish="[120]"), gateway)


# --- task8: orthopedic referral ------------------------------------------------------------------


def test_task8_valid_referral_is_correct_and_the_result_is_not_checked():
    assert correct(make_task(8), transcript(post("ServiceRequest", referral()), finish="nonsense"))


def test_task8_note_text_may_hold_more_than_the_sbar_sentence():
    payload = referral({"text": "Referral. " + SBAR + " Thanks."})
    assert correct(make_task(8), transcript(post("ServiceRequest", payload)))


def test_task8_quirk_note_as_fhir_list_of_annotations_is_incorrect():
    verdict = official(make_task(8), transcript(post("ServiceRequest", referral([{"text": SBAR}]))))
    assert not verdict.correct and "note has no text" in verdict.reason


def test_task8_generated_task_sol_replaces_the_sbar_constant():
    task = make_task(8, sol=["Please evaluate the right shoulder."])
    assert correct(task, transcript(post("ServiceRequest", referral({"text": "Please evaluate the right shoulder."}))))
    assert not correct(task, transcript(post("ServiceRequest", referral())))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("resourceType",), "Referral"),
        (("code", "coding", 0, "system"), "http://snomed.info/sct/"),
        (("code", "coding", 0, "code"), "306181000000107"),
        (("authoredOn",), "2023-11-13T10:15:00Z"),
        (("status",), "draft"),
        (("intent",), "proposal"),
        (("priority",), "routine"),
        (("subject",), {"reference": MRN}),
        (("note",), {"text": SBAR[:-1]}),
    ],
)
def test_task8_referral_deviation_is_incorrect(path, value):
    assert not correct(make_task(8), transcript(post("ServiceRequest", changed(referral(), path, value))))


def test_task8_referral_posted_to_observation_is_incorrect():
    assert not correct(make_task(8), transcript(post("Observation", referral())))


# --- task9: potassium replacement and follow-up lab -----------------------------------------------


def k(*readings):
    return labs("K", *readings)


LOW_K = k(("2023-11-01T08:00:00+00:00", 4.0), ("2023-11-12T08:00:00+00:00", 3.0))


def k_orders(dose=50.0, lab=None):
    return (post("MedicationRequest", potassium_order(dose)), post("ServiceRequest", lab or potassium_lab()))


def test_task9_low_potassium_needs_the_oral_order_then_the_morning_lab():
    assert correct(make_task(9), transcript(*k_orders(), finish="[3.0]"), LOW_K)
    assert correct(make_task(9), transcript(*k_orders(), finish="[]"), LOW_K)


def test_task9_dose_is_10_meq_per_0_1_below_3_5_within_0_1():
    assert correct(make_task(9), transcript(*k_orders(50.09)), LOW_K)
    assert correct(make_task(9), transcript(*k_orders(49.91)), LOW_K)
    verdict = official(make_task(9), transcript(*k_orders(50.2)), LOW_K)
    assert not verdict.correct and "expected 50.0" in verdict.reason


def test_task9_dose_exactly_0_1_off_fails_by_float_arithmetic():
    assert not correct(make_task(9), transcript(*k_orders(50.1)), LOW_K)


def test_task9_orders_in_the_wrong_order_are_incorrect():
    med, lab = k_orders()
    assert not correct(make_task(9), transcript(lab, med), LOW_K)


def test_task9_only_the_medication_order_is_incorrect():
    med, _ = k_orders()
    assert official(make_task(9), transcript(med), LOW_K) == Verdict(False, "task9: expected 2 accepted POSTs, found 1")


def test_task9_route_is_compared_lowercased_and_stripped():
    med = changed(potassium_order(50), ("dosageInstruction", 0, "route"), " Oral ")
    assert correct(make_task(9), transcript(post("MedicationRequest", med), k_orders()[1]), LOW_K)


def test_task9_route_object_is_incorrect():
    med = changed(potassium_order(50), ("dosageInstruction", 0, "route"), {"text": "oral"})
    assert not correct(make_task(9), transcript(post("MedicationRequest", med), k_orders()[1]), LOW_K)


def test_task9_lab_must_be_next_day_at_8():
    assert correct(
        make_task(9),
        transcript(*k_orders(lab=changed(potassium_lab(), ("occurrenceDateTime",), "2023-11-14T08:00:00Z"))),
        LOW_K,
    )
    assert not correct(
        make_task(9),
        transcript(*k_orders(lab=changed(potassium_lab(), ("occurrenceDateTime",), "2023-11-14T09:00:00+00:00"))),
        LOW_K,
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("code", "coding", 0, "code"), "2823-4"),
        (("priority",), "routine"),
        (("authoredOn",), "2023-11-13T10:15"),
        (("occurrenceDateTime",), DELETE),
    ],
)
def test_task9_lab_deviation_is_incorrect(path, value):
    assert not correct(make_task(9), transcript(*k_orders(lab=changed(potassium_lab(), path, value))), LOW_K)


def test_task9_wrong_unit_is_incorrect():
    med = changed(potassium_order(50), ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "unit"), "mmol")
    assert not correct(make_task(9), transcript(post("MedicationRequest", med), k_orders()[1]), LOW_K)


def test_task9_normal_or_missing_potassium_needs_no_post():
    normal = k(("2023-11-12T08:00:00+00:00", 3.5))
    assert correct(make_task(9), transcript(finish="[3.5]"), normal)
    assert not correct(make_task(9), transcript(*k_orders(), finish="[3.5]"), normal)
    assert correct(make_task(9), transcript(finish="[-1]"), k())
    assert correct(make_task(9), transcript(finish="[]"), k())
    assert not correct(make_task(9), transcript(finish="[0]"), k())


def test_task9_orders_with_a_wrong_answer_are_incorrect():
    assert not correct(make_task(9), transcript(*k_orders(), finish="[4.0]"), LOW_K)


def test_task9_reason_says_the_rule_saw_only_the_word_post_when_no_post_was_made():
    normal = k(("2023-11-12T08:00:00+00:00", 4.6))
    outcome = transcript((f"GET {API}Observation?code=K", "bundle"), finish='["No POST needed", 4.6]')
    outcome.history[-1]["content"] = "Potassium is normal, so I will not POST an order.\nFINISH([4.6])"
    verdict = official(make_task(9), outcome, normal)
    assert verdict == Verdict(
        False,
        "task9: agent turn 2 contains the word POST ('Potassium is normal, so I will "
        "not POST an order.'), which the official rule counts as a POST, but potassium "
        "4.6 is not low (3.5 or above), so no order was expected",
    )


def test_task9_reason_names_the_url_of_a_real_post_and_a_missing_potassium():
    outcome = transcript(*k_orders(), finish="[]")
    assert official(make_task(9), outcome, k()).reason == (
        "task9: agent turn 1 POSTed to http://localhost:8080/fhir/MedicationRequest, "
        "but no potassium value is on file, so no order was expected"
    )


# --- task10: HbA1c ------------------------------------------------------------------------------


RECENT_A1C = labs("A1C", ("2021-01-01T08:00:00+00:00", 7.9), ("2023-06-01T08:00:00+00:00", 6.5))
STALE_A1C = labs("A1C", ("2021-01-01T08:00:00+00:00", 7.9))


def test_task10_recent_value_needs_value_and_time_as_stored_and_no_post():
    assert correct(make_task(10), transcript(finish='[6.5, "2023-06-01T08:00:00+00:00"]'), RECENT_A1C)
    assert correct(make_task(10), transcript(finish="[]"), RECENT_A1C)


def test_task10_time_in_another_format_is_incorrect():
    assert not correct(make_task(10), transcript(finish='[6.5, "2023-06-01T08:00:00Z"]'), RECENT_A1C)


def test_task10_recent_value_with_a_post_is_incorrect():
    outcome = transcript(post("ServiceRequest", a1c_order()), finish='[6.5, "2023-06-01T08:00:00+00:00"]')
    assert not correct(make_task(10), outcome, RECENT_A1C)


def test_task10_stale_value_needs_a_new_a1c_order():
    outcome = transcript(post("ServiceRequest", a1c_order()), finish='[7.9, "2021-01-01T08:00:00+00:00"]')
    assert correct(make_task(10), outcome, STALE_A1C)
    assert not correct(make_task(10), transcript(finish='[7.9, "2021-01-01T08:00:00+00:00"]'), STALE_A1C)


def test_task10_exactly_one_year_old_is_not_stale():
    gateway = labs("A1C", ("2022-11-13T10:15:00+00:00", 7.0))
    assert correct(make_task(10), transcript(finish='[7.0, "2022-11-13T10:15:00+00:00"]'), gateway)


def test_task10_no_value_needs_an_order_and_minus_one():
    assert correct(make_task(10), transcript(post("ServiceRequest", a1c_order()), finish="[-1]"), labs("A1C"))
    assert not correct(make_task(10), transcript(finish="[-1]"), labs("A1C"))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("code", "coding", 0, "code"), "4548-5"),
        (("code", "coding", 0, "system"), "loinc"),
        (("priority",), "routine"),
        (("authoredOn",), "2023-11-13"),
        (("subject",), DELETE),
    ],
)
def test_task10_order_deviation_is_incorrect(path, value):
    outcome = transcript(post("ServiceRequest", changed(a1c_order(), path, value)), finish="[]")
    assert not correct(make_task(10), outcome, STALE_A1C)


def test_grader_only_follows_the_first_page_in_official_mode():
    first = bundle([observation("2023-11-13T08:00:00+00:00", 2.0)], next_url=f"{API}?_getpages=x")
    gateway = FakeGateway(
        {obs_url("MG"): first, f"{API}?_getpages=x": bundle([observation("2023-11-13T09:00:00+00:00", 1.0)])}
    )
    assert correct(make_task(4), transcript(finish="[2.0]"), gateway)
    assert gateway.requested == [obs_url("MG")]
