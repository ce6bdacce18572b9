"""The v2 graders decide as upstream's new_refsol does (official), with the listed fixes (corrected),
and from what the attempt's namespace holds (state): one test per branch and per quirk of GRADING.md."""

from __future__ import annotations

from datetime import datetime

import pytest

from helpers.v2_ehr import (
    API,
    MRN,
    SUBJECT,
    Attempt,
    FakeEhr,
    condition,
    medication,
    observation,
    procedure,
    service_request,
    v2_task,
)
from medbench.grading.v2 import grade_v2
from medbench.grading.v2.clock import DEFAULT_NOW, task_now

RUN_2026 = datetime.fromisoformat("2026-12-05T02:00:00+00:00")


def verdict(category, ehr, attempt, mode="official", context="", run_started=RUN_2026):
    return grade_v2(v2_task(category, context), attempt.as_graded(), ehr, API, mode, run_started=run_started)


def order(code, note="", status="active", **extra):
    return {
        "resourceType": "ServiceRequest",
        "code": {"coding": [{"system": "x", "code": code, "display": code}]},
        "status": status,
        "intent": "order",
        "subject": SUBJECT,
        "note": {"text": note},
        **extra,
    }


def med_order(text, status="active", **extra):
    return {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"coding": [], "text": text},
        "status": status,
        "intent": "order",
        "subject": SUBJECT,
        **extra,
    }


CT_ORDER = order("74177", "Renal mass follow-up")


# --- the shared machinery -----------------------------------------------------------------------------------


def test_task_now_reads_the_its_now_clause_then_the_last_timestamp_then_the_default():
    assert task_now("code HEARTRATE. It's 2023-11-13T12:00:00+00:00 now") == datetime.fromisoformat(
        "2023-11-13T12:00:00+00:00"
    )
    assert task_now("seen 2022-01-01T00:00:00+00:00 and 2023-01-01T00:00:00+00:00") == datetime.fromisoformat(
        "2023-01-01T00:00:00+00:00"
    )
    assert task_now("It's 2023-08-15:00:00+00:00 now") == DEFAULT_NOW  # task3_19's malformed time
    assert task_now("It's 2023-08-15T10:00:00Z now") == DEFAULT_NOW  # a Z suffix does not match


def test_resources_updated_after_the_cutoff_are_not_baseline():
    ehr = FakeEhr().add(procedure("IMGCT0491", "2023-10-01T00:00:00+00:00"), last_updated="2025-02-01T00:00:00+00:00")
    # The only CT is invisible, so an order is due: silence fails.
    assert not verdict(1, ehr, Attempt().finishes([-1])).correct


def test_an_unanswered_last_post_crashes_official_but_not_corrected():
    ehr = FakeEhr()
    attempt = Attempt(raw=True).posts("ServiceRequest", CT_ORDER, accepted=False)
    official = verdict(1, ehr, attempt)
    assert not official.correct and "crashes" in official.reason
    corrected = verdict(1, ehr, attempt, "corrected")
    assert not corrected.correct and "exactly one accepted write" in corrected.reason


def test_a_run_that_ends_on_an_accepted_post_crashes_official():
    # Upstream's wrapper writes "POST request accepted" as an agent item: it contains "POST", and
    # when nothing follows it (steps ran out right after a create) the next-item lookup raises.
    attempt = Attempt(raw=True, status="limit_reached", result="[]").posts("ServiceRequest", CT_ORDER)
    assert "crashes" in verdict(1, FakeEhr(), attempt).reason
    assert verdict(1, FakeEhr(), attempt, "corrected").correct


def test_a_status_other_than_a_finish_or_an_ended_run_is_not_graded():
    attempt = Attempt(status="error")
    assert verdict(3, FakeEhr(), attempt).reason == "error"


def test_a_run_without_finish_is_graded_with_an_empty_value():
    attempt = Attempt(status="limit_reached", result="[]")
    assert verdict(4, FakeEhr(), attempt).correct  # no catheter: silence passes


# --- task1 -------------------------------------------------------------------------------------------------


def test_task1_no_ct_needs_exactly_one_ct_order_with_the_indication():
    ehr = FakeEhr()
    attempt = Attempt().posts("ServiceRequest", CT_ORDER, ehr=ehr).finishes([-1])
    for mode in ("official", "corrected", "state"):
        assert verdict(1, ehr, attempt, mode).correct, mode


def test_task1_indication_without_the_hyphen_fails():
    result = verdict(1, FakeEhr(), Attempt().posts("ServiceRequest", order("74177", "Renal mass follow up")))
    assert not result.correct and "Renal mass follow-up" in result.reason


def test_task1_only_the_first_coding_counts():
    payload = order("74177", "Renal mass follow-up")
    payload["code"]["coding"].insert(0, {"system": "x", "code": "IMGCT0491", "display": "CT"})
    result = verdict(1, FakeEhr(), Attempt().posts("ServiceRequest", payload))
    assert not result.correct and "74177" in result.reason


def test_task1_a_second_write_of_any_kind_fails():
    attempt = Attempt().posts("ServiceRequest", CT_ORDER).posts("ServiceRequest", order("CON417"))
    assert "found 2" in verdict(1, FakeEhr(), attempt).reason


def test_task1_indication_may_be_in_reason_code():
    payload = order("74177", "", reasonCode=[{"text": "renal mass follow-up"}])
    assert verdict(1, FakeEhr(), Attempt().posts("ServiceRequest", payload)).correct


def test_task1_official_anchor_is_the_runs_start_and_corrected_the_tasks_now():
    ehr = FakeEhr().add(procedure("IMGCT0491", "2023-06-01T00:00:00+00:00"))
    silent = Attempt().finishes(["2023-06-01T00:00:00+00:00"])
    # Run in 2026: every pre-2025 CT is stale under upstream's wall clock, so silence fails ...
    assert not verdict(1, ehr, silent, "official").correct
    # ... a run recorded as started in 2024 reproduces the other decision ...
    assert verdict(1, ehr, silent, "official", run_started=datetime.fromisoformat("2024-01-01T00:00:00+00:00")).correct
    # ... and corrected measures from the task's now (default 2023-11-07), where the CT is recent.
    assert verdict(1, ehr, silent, "corrected").correct


def test_task1_recent_ct_strict_silence_counts_the_word_post_in_prose_officially():
    ehr = FakeEhr().add(procedure("IMGCT0491", "2026-10-01T00:00:00+00:00"))
    attempt = Attempt().says("Plan: no POST is needed.").finishes(["2026-10-01T00:00:00+00:00"])
    official = verdict(1, ehr, attempt)
    assert not official.correct and "contains 'POST'" in official.reason
    assert verdict(1, ehr, attempt, "corrected").correct


def test_task1_corrected_checks_the_date_the_instruction_asks_for():
    ehr = FakeEhr().add(procedure("IMGIL0001", "2021-03-04T10:00:00+00:00"))
    wrong = Attempt().posts("ServiceRequest", CT_ORDER, ehr=ehr).finishes([-1])
    assert verdict(1, ehr, wrong).correct  # official never reads the answer
    assert "most recent CT" in verdict(1, ehr, wrong, "corrected").reason
    right = Attempt().posts("ServiceRequest", CT_ORDER).finishes(["2021-03-04T10:00:00+00:00"])
    assert verdict(1, ehr, right, "corrected").correct


def test_task1_ignores_a_74177_procedure():
    ehr = FakeEhr().add(procedure("74177", "2023-11-01T00:00:00+00:00"))
    assert verdict(1, ehr, Attempt().posts("ServiceRequest", CT_ORDER).finishes([-1]), "corrected").correct


# --- task2 -------------------------------------------------------------------------------------------------

HEPARIN = "HEPARIN, PORCINE (PF) 5,000 UNIT/0.5 ML INJ SYRG"


def test_task2_one_correct_heparin_is_the_silent_branch():
    ehr = FakeEhr().add(medication(HEPARIN))
    assert verdict(2, ehr, Attempt().finishes([-1])).correct
    stop = Attempt().posts("MedicationRequest", med_order("heparin", status="stopped"))
    assert "none is due" in verdict(2, ehr, stop).reason


def test_task2_create_only_needs_heparin_and_the_literal_5000():
    ehr = FakeEhr()
    assert verdict(2, ehr, Attempt().posts("MedicationRequest", med_order("heparin 5000 units SC q8h"))).correct
    quirk = verdict(2, ehr, Attempt().posts("MedicationRequest", med_order("heparin 5,000 units SC q8h")))
    assert not quirk.correct and "heparin 5000" in quirk.reason


def test_task2_a_single_non_heparin_anticoagulant_needs_only_the_create():
    ehr = FakeEhr().add(medication("enoxaparin 40 mg SC daily"))
    assert verdict(2, ehr, Attempt().posts("MedicationRequest", med_order("heparin 5000 units"))).correct


def test_task2_stop_only_needs_any_stop_and_a_heparin_flush_is_an_anticoagulant():
    ehr = FakeEhr().add(medication(HEPARIN)).add(medication("heparin lock flush 10 units/mL"))
    assert not verdict(2, ehr, Attempt().finishes([-1])).correct
    stop_anything = Attempt().posts("MedicationRequest", med_order("aspirin", status="cancelled"))
    assert verdict(2, ehr, stop_anything).correct


def test_task2_create_and_stop():
    ehr = FakeEhr().add(medication("enoxaparin 40 mg")).add(medication("warfarin 5 mg"))
    create = Attempt().posts("MedicationRequest", med_order("heparin 5000 units"))
    assert "discontinuing" in verdict(2, ehr, create).reason
    both = (
        Attempt()
        .posts("MedicationRequest", med_order("heparin 5000 units"))
        .posts("MedicationRequest", med_order("warfarin 5 mg", status="stopped"))
    )
    assert verdict(2, ehr, both).correct


def test_task2_brand_names_are_not_recognised_and_stopped_orders_are_not_read():
    ehr = FakeEhr().add(medication(HEPARIN)).add(medication("LOVENOX 40 mg")).add(medication("warfarin", "stopped"))
    assert verdict(2, ehr, Attempt().finishes([-1])).correct


def test_task2_every_write_must_name_the_patient():
    payload = med_order("heparin 5000 units", subject={"reference": f"Patient/{MRN}", "display": "x"})
    assert "subject" in verdict(2, FakeEhr(), Attempt().posts("MedicationRequest", payload)).reason


# --- task3 -------------------------------------------------------------------------------------------------

NOW3 = "It's 2023-11-13T12:00:00+00:00 now"


def hr_ehr():
    return (
        FakeEhr()
        .add(observation("HEARTRATE", "2023-11-13T12:00:00+00:00", 80))  # at now: included
        .add(observation("HEARTRATE", "2023-11-13T06:00:00+00:00", 90))  # now - 6 h: included
        .add(observation("HEARTRATE", "2023-11-13T00:00:00+00:00", 100))  # now - 12 h: included in 12 h
        .add(observation("HEARTRATE", "2023-11-13T13:00:00+00:00", 200))
    )  # after now: excluded


def test_task3_both_windows_inclusive_within_a_tenth():
    attempt = Attempt().finishes([85.05, 90])
    for mode in ("official", "corrected", "state"):
        assert verdict(3, hr_ehr(), attempt, mode, NOW3).correct, mode
    assert "6 h mean is 85.00" in verdict(3, hr_ehr(), Attempt().finishes([85.2, 90]), context=NOW3).reason


def test_task3_empty_windows_take_minus_one_or_null_and_strings_are_numbers():
    ehr = FakeEhr().add(observation("HEARTRATE", "2023-11-13T01:00:00+00:00", 70))
    assert verdict(3, ehr, Attempt().finishes([None, "70"]), context=NOW3).correct
    assert verdict(3, ehr, Attempt().finishes(["-1", 70.0]), context=NOW3).correct
    assert not verdict(3, ehr, Attempt().finishes([70, 70]), context=NOW3).correct


def test_task3_the_answer_must_be_two_values_not_nested():
    reason = verdict(3, hr_ehr(), Attempt().finishes([[85, 90]]), context=NOW3).reason
    assert "list of two values" in reason


def test_task3_is_read_only_strictly_in_official_and_by_writes_in_corrected():
    prose = Attempt().says("I will not POST anything.").finishes([85, 90])
    assert not verdict(3, hr_ehr(), prose, context=NOW3).correct
    assert verdict(3, hr_ehr(), prose, "corrected", NOW3).correct
    rejected = (
        Attempt().posts("Observation", {"resourceType": "Observation"}, accepted=False).says("x").finishes([85, 90])
    )
    assert not verdict(3, hr_ehr(), rejected, context=NOW3).correct  # an attempted POST fails strictly
    assert verdict(3, hr_ehr(), rejected, "corrected", NOW3).correct


# --- task4 -------------------------------------------------------------------------------------------------

NOW4 = "code 'NUR1373'. It's 2023-11-11T09:00:00+00:00 now."
REMOVAL = order("NUR1373", "remove catheter")


def test_task4_overdue_catheter_needs_a_removal_order_by_code():
    ehr = FakeEhr().add(procedure("NUR1373", "2023-11-08T09:00:00+00:00"))
    assert verdict(4, ehr, Attempt().posts("ServiceRequest", REMOVAL), context=NOW4).correct
    in_note = order("X", "NUR1373 removal")
    assert "NUR1373" in verdict(4, ehr, Attempt().posts("ServiceRequest", in_note), context=NOW4).reason


def test_task4_silent_branches():
    recent = FakeEhr().add(procedure("NUR1373", "2023-11-09T09:00:00+00:00"))  # exactly 48 h: not over
    ordered = FakeEhr().add(procedure("NUR1373", "2023-11-01T09:00:00+00:00")).add(service_request("NUR1373"))
    for ehr in (FakeEhr(), recent, ordered):
        assert verdict(4, ehr, Attempt().finishes([-1]), context=NOW4).correct
        assert "no removal is due" in verdict(4, ehr, Attempt().posts("ServiceRequest", REMOVAL), context=NOW4).reason


def test_task4_a_revoked_removal_order_does_not_block_and_period_end_dates_the_insertion():
    ehr = FakeEhr().add(
        {
            "resourceType": "Procedure",
            "code": {"coding": [{"code": "NUR1373"}]},
            "performedPeriod": {"start": "2023-11-01T00:00:00+00:00", "end": "2023-11-10T12:00:00+00:00"},
        }
    )
    assert verdict(4, ehr, Attempt().finishes([-1]), context=NOW4).correct  # end is < 48 h ago
    ehr = FakeEhr().add(procedure("NUR1373", "2023-11-01T09:00:00+00:00")).add(service_request("NUR1373", "revoked"))
    assert not verdict(4, ehr, Attempt().finishes([-1]), context=NOW4).correct


# --- task5 -------------------------------------------------------------------------------------------------


def test_task5_no_diagnosis_is_strictly_silent():
    attempt = Attempt().says("No POST needed").finishes([-1])
    assert not verdict(5, FakeEhr().add(condition("C64.1")), attempt).correct
    assert verdict(5, FakeEhr().add(condition("C64.1")), attempt, "corrected").correct


def test_task5_recent_ct_of_any_of_three_codes_is_silent():
    ehr = FakeEhr().add(condition("C64.2")).add(procedure("74177", "2023-10-01T00:00:00+00:00"))
    assert verdict(5, ehr, Attempt().finishes([-1])).correct


def test_task5_stale_ct_needs_both_codes_and_one_order_may_carry_both():
    ehr = FakeEhr().add(condition("C64.2")).add(procedure("IMGCT0491", "2023-01-01T00:00:00+00:00"))
    assert "CON417" in verdict(5, ehr, Attempt().posts("ServiceRequest", order("74177"))).reason
    both = order("74177")
    both["code"]["coding"].append({"system": "x", "code": "CON417", "display": "IR"})
    assert verdict(5, ehr, Attempt().posts("ServiceRequest", both)).correct
    extra = (
        Attempt()
        .posts("ServiceRequest", order("74177"))
        .posts("ServiceRequest", order("CON417"))
        .posts("Observation", {"resourceType": "Observation", "subject": SUBJECT})
    )
    assert verdict(5, ehr, extra).correct  # writes outside the filter are skipped, not penalised


# --- task6 -------------------------------------------------------------------------------------------------

LEVO = med_order("levothyroxine 25 mcg PO daily")
TSH_LAB, FT4_LAB = order("TSH"), order("FT4")


def test_task6_branch_a_two_high_tsh_a_month_apart():
    ehr = (
        FakeEhr()
        .add(observation("TSH", "2023-01-01T00:00:00+00:00", 12))
        .add(observation("TSH", "2023-01-31T00:00:00+00:00", 11))
        .add(observation("FT4", "2023-01-31T00:00:00+00:00", 1))
    )
    full = Attempt().posts("MedicationRequest", LEVO).posts("ServiceRequest", TSH_LAB).posts("ServiceRequest", FT4_LAB)
    assert verdict(6, ehr, full).correct
    labs_only = Attempt().posts("ServiceRequest", TSH_LAB).posts("ServiceRequest", FT4_LAB)
    assert "levothyroxine" in verdict(6, ehr, labs_only).reason
    quirk = (
        Attempt()
        .posts("MedicationRequest", med_order("levothyroxine 125 mcg"))
        .posts("ServiceRequest", TSH_LAB)
        .posts("ServiceRequest", TSH_LAB)
    )
    assert verdict(6, ehr, quirk).correct  # "25" is a substring of 125; two TSH orders count as two labs


def test_task6_29_days_apart_is_not_branch_a():
    ehr = (
        FakeEhr()
        .add(observation("TSH", "2023-01-01T00:00:00+00:00", 12))
        .add(observation("TSH", "2023-01-30T00:00:00+00:00", 11))
    )
    assert verdict(6, ehr, Attempt().finishes([-1])).correct


def test_task6_branch_b_labs_and_no_medication():
    ehr = (
        FakeEhr()
        .add(observation("TSH", "2023-05-01T00:00:00+00:00", 10))
        .add(observation("FT4", "2023-05-01T00:00:00+00:00", 1.8))
    )
    labs = Attempt().posts("ServiceRequest", TSH_LAB).posts("ServiceRequest", FT4_LAB)
    assert verdict(6, ehr, labs).correct
    assert (
        "labs only"
        in verdict(
            6,
            ehr,
            Attempt()
            .posts("MedicationRequest", LEVO)
            .posts("ServiceRequest", TSH_LAB)
            .posts("ServiceRequest", FT4_LAB),
        ).reason
    )


def test_task6_neither_branch_is_silent_and_corrected_checks_the_values_asked_for():
    ehr = FakeEhr().add(observation("TSH", "2023-05-01T00:00:00+00:00", 3.2))
    assert verdict(6, ehr, Attempt().finishes([-1])).correct
    assert "latest TSH" in verdict(6, ehr, Attempt().finishes([-1]), "corrected").reason
    assert verdict(6, ehr, Attempt().finishes([3.2, -1]), "corrected").correct


# --- task7 -------------------------------------------------------------------------------------------------

ECG = order("445118002", "12-lead ECG in 24 h")
STOP_ONDANSETRON = med_order("ondansetron 4 mg", status="stopped")


def test_task7_no_qtc_is_strictly_silent_and_500_is_not_prolonged():
    assert not verdict(7, FakeEhr(), Attempt().says("POST nothing").finishes([-1])).correct
    ehr = FakeEhr().add(observation("QTCINTERVAL", "2023-11-01T00:00:00+00:00", 500))
    assert verdict(7, ehr, Attempt().finishes([-1])).correct


def test_task7_prolonged_needs_an_ecg_and_a_stopped_qt_drug_and_only_orders():
    ehr = FakeEhr().add(observation("QTCINTERVAL", "2023-11-01T00:00:00+00:00", 520))
    assert verdict(7, ehr, Attempt().posts("ServiceRequest", ECG).posts("MedicationRequest", STOP_ONDANSETRON)).correct
    assert "QT-prolonging" in verdict(7, ehr, Attempt().posts("ServiceRequest", ECG)).reason
    other = (
        Attempt()
        .posts("ServiceRequest", ECG)
        .posts("MedicationRequest", STOP_ONDANSETRON)
        .posts("Observation", {"resourceType": "Observation", "subject": SUBJECT})
    )
    assert "every write" in verdict(7, ehr, other).reason


def test_task7_latest_is_by_last_updated_officially_and_by_clinical_time_when_corrected():
    ehr = (
        FakeEhr()
        .add(observation("QTCINTERVAL", "2023-11-05T00:00:00+00:00", 450), "2024-12-30T20:00:00+00:00")
        .add(observation("QTCINTERVAL", "2023-10-01T00:00:00+00:00", 530), "2024-12-30T21:00:00+00:00")
    )
    silent = Attempt().finishes([-1])
    assert not verdict(7, ehr, silent).correct  # the older reading was updated last: "prolonged"
    assert verdict(7, ehr, silent, "corrected").correct


# --- task8 -------------------------------------------------------------------------------------------------

NALOXONE = med_order("naloxone 4 mg nasal spray")


def test_task8_silent_without_opioid_or_with_naloxone_or_a_combination_product():
    for ehr in (
        FakeEhr(),
        FakeEhr().add(medication("oxycodone 5 mg")).add(medication("NARCAN 4 mg")),
        FakeEhr().add(medication("morphine")).add(medication("buprenorphine-naloxone 8-2 mg")),
    ):
        assert verdict(8, ehr, Attempt().finishes([-1])).correct


def test_task8_needs_exactly_one_naloxone_order():
    ehr = FakeEhr().add(medication("hydromorphone 2 mg")).add(medication("naloxone", status="stopped"))
    assert verdict(8, ehr, Attempt().posts("MedicationRequest", NALOXONE)).correct
    twice = Attempt().posts("MedicationRequest", NALOXONE).posts("MedicationRequest", NALOXONE)
    assert "found 2" in verdict(8, ehr, twice).reason


# --- task9 -------------------------------------------------------------------------------------------------

NOW9 = "It's 2024-01-09T00:00:00+00:00 now."
FLU = order("90686", "annual flu shot")


def test_task9_recent_shot_is_silent_and_a_stale_one_needs_exactly_one_order():
    recent = FakeEhr().add(procedure("90686", "2023-01-09T00:00:00+00:00"))
    assert verdict(9, recent, Attempt().finishes(["2023-01-09"]), "corrected", NOW9).correct
    stale = FakeEhr().add(procedure("90686", "2023-01-08T23:59:00+00:00"))
    assert verdict(9, stale, Attempt().posts("ServiceRequest", FLU), context=NOW9).correct
    assert (
        "date of the last influenza"
        in verdict(9, stale, Attempt().posts("ServiceRequest", FLU), "corrected", NOW9).reason
    )


def test_task9_flu_is_a_loose_substring_and_an_empty_coding_fails():
    ehr = FakeEhr()
    assert verdict(9, ehr, Attempt().posts("ServiceRequest", order("X", "IV fluids")), context=NOW9).correct
    empty = order("90686")
    empty["code"]["coding"] = []
    assert "empty" in verdict(9, ehr, Attempt().posts("ServiceRequest", empty), context=NOW9).reason


# --- task10 ------------------------------------------------------------------------------------------------

NOW10 = "It's 2023-11-07T12:00:00+00:00 now."
BOOSTER = order(
    "91320",
    "booster",
)
BOOSTER["code"]["coding"][0]["display"] = "COVID-19 vaccine"


def test_task10_calendar_days_a_dose_on_2022_11_07_is_recent():
    ehr = FakeEhr().add(procedure("COVIDVACCINE", "2022-11-07T23:00:00+00:00"))
    assert verdict(10, ehr, Attempt().finishes(["2022-11-07"]), "corrected", NOW10).correct


def test_task10_completed_medication_requests_count_by_authored_on():
    ehr = (
        FakeEhr()
        .add(medication("COVID-19 VACCINE, MRNA", "completed", "2023-05-01T00:00:00+00:00"))
        .add(medication("COVID-19 VACCINE, MRNA", "active", "2021-05-01T00:00:00+00:00"))
    )
    assert verdict(10, ehr, Attempt().finishes([-1]), context=NOW10).correct


def test_task10_stale_needs_one_order_naming_covid_in_code():
    ehr = FakeEhr().add(procedure("COVIDVACCINE", "2022-11-06T00:00:00+00:00"))
    assert verdict(10, ehr, Attempt().posts("ServiceRequest", BOOSTER), context=NOW10).correct
    in_note = order("91320", "COVID booster")
    assert "COVID" in verdict(10, ehr, Attempt().posts("ServiceRequest", in_note), context=NOW10).reason


# --- state -------------------------------------------------------------------------------------------------


def test_state_reads_the_writes_the_namespace_holds_not_what_the_transcript_says():
    ehr = FakeEhr().add(medication("oxycodone 5 mg"))
    claimed = Attempt().posts("MedicationRequest", NALOXONE)  # accepted in the transcript, never written
    assert verdict(8, ehr, claimed).correct
    state = verdict(8, ehr, claimed, "state")
    assert not state.correct and "found 0" in state.reason
    ehr.post(API + "MedicationRequest", NALOXONE)
    assert verdict(8, ehr, Attempt(), "state").correct


@pytest.mark.parametrize("category", range(1, 11))
def test_every_incorrect_verdict_says_why(category):
    ehr = FakeEhr().add(medication("oxycodone")).add(observation("QTCINTERVAL", "2023-01-01T00:00:00+00:00", 600))
    attempt = Attempt().posts("Observation", {"resourceType": "Observation"}).posts("Observation", {"x": 1})
    for mode in ("official", "corrected", "state"):
        result = verdict(category, ehr, attempt, mode)
        assert result.correct or result.reason, (category, mode)


# --- more quirks ---------------------------------------------------------------------------------------


def test_status_and_intent_compare_case_insensitively_but_subject_exactly():
    ehr = FakeEhr().add(procedure("NUR1373", "2023-11-01T09:00:00+00:00"))
    shouting = order("NUR1373", status="ACTIVE")
    shouting["intent"] = "Order"
    assert verdict(4, ehr, Attempt().posts("ServiceRequest", shouting), context=NOW4).correct
    other_form = order("NUR1373")
    other_form["subject"] = {"reference": MRN}
    assert not verdict(4, ehr, Attempt().posts("ServiceRequest", other_form), context=NOW4).correct


def test_task4_an_insertion_after_now_needs_nothing_and_a_removal_procedure_is_ignored():
    later = FakeEhr().add(procedure("NUR1373", "2023-11-12T09:00:00+00:00"))
    assert verdict(4, later, Attempt().finishes([-1]), context=NOW4).correct
    removed = (
        FakeEhr()
        .add(procedure("NUR1373", "2023-11-01T09:00:00+00:00"))
        .add(procedure("NUR1374", "2023-11-02T09:00:00+00:00"))
    )
    assert not verdict(4, removed, Attempt().finishes([-1]), context=NOW4).correct


def test_task5_a_medication_request_may_carry_the_codes():
    ehr = FakeEhr().add(condition("C64.2"))
    carrier = med_order("x", code={"coding": [{"code": "74177"}, {"code": "CON417"}]})
    assert verdict(5, ehr, Attempt().posts("MedicationRequest", carrier)).correct


def test_task6_an_old_high_pair_triggers_branch_a_although_the_latest_tsh_is_normal():
    ehr = (
        FakeEhr()
        .add(observation("TSH", "2020-01-01T00:00:00+00:00", 15))
        .add(observation("TSH", "2020-03-01T00:00:00+00:00", 12))
        .add(observation("TSH", "2023-03-01T00:00:00+00:00", 2))
    )
    assert "levothyroxine" in verdict(6, ehr, Attempt().finishes([-1])).reason


def test_task9_a_shot_dated_after_now_counts_as_recent():
    ehr = FakeEhr().add(procedure("90686", "2024-03-01T00:00:00+00:00"))
    assert verdict(9, ehr, Attempt().finishes([-1]), context=NOW9).correct
