"""The reference model's decisions, from hand-made conversations (one per category and branch).

Expected payloads and answers are written from ../shared/medagentbench/GRADING.md, not from the
agent's code: a POST must be what the official grader accepts, a FINISH what it compares to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from medbench.models.builtin.reference_agent import ReferenceAgentError, reference_reply
from medbench.models.builtin.reference_facts import read_facts

BASE = "http://localhost:8080/fhir/"
NOW = "2023-11-13T10:15:00+00:00"
ACCEPTED = "POST request accepted and executed successfully. Please call FINISH if you have got answers for all the questions and finished all the requested tasks"
CATALOG = json.dumps([{"name": "GET {api_base}/Observation", "description": "search http://loinc.org codes"}])


def prompt(question: str, context: str = "") -> str:
    return f"Follow the protocol. Use {BASE} as the api_base.\n{CATALOG}\n\nContext: {context}\nQuestion: {question}"


def get_reply(resources: list[dict[str, Any]], next_url: str | None = None) -> str:
    links = [{"relation": "self", "url": f"{BASE}Observation"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if resources:
        bundle["entry"] = [{"fullUrl": f"{BASE}X/{i}", "resource": r} for i, r in enumerate(resources)]
    body = json.dumps(bundle, indent=2)
    return f"Here is the response from the GET request:\n{body}. Please call FINISH if you have got answers for all the questions and finished all the requested tasks"


def obs(when: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "mg/dL"},
    }


def patient(mrn: str, given: list[str], family: str, born: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": mrn,
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}],
        "name": [{"use": "official", "family": family, "given": given}],
        "birthDate": born,
    }


def drive(task_prompt: str, pages: dict[str, str]) -> list[str]:
    """Run the agent to FINISH with a stand-in harness: GETs answered from `pages`, POSTs accepted."""
    messages = [{"role": "user", "content": task_prompt}]
    actions: list[str] = []
    while not actions or not actions[-1].startswith("FINISH"):
        assert len(actions) < 8, f"agent did not finish: {actions}"
        action = reference_reply(messages)
        actions.append(action)
        messages.append({"role": "assistant", "content": action})
        if action.startswith("GET"):
            messages.append({"role": "user", "content": pages[action[4:]]})
        elif action.startswith("POST"):
            messages.append({"role": "user", "content": ACCEPTED})
    return actions


def finish(actions: list[str]) -> Any:
    return json.loads(actions[-1][len("FINISH(") : -1])


def posts(actions: list[str]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for action in actions:
        if action.startswith("POST"):
            first, _, rest = action.partition("\n")
            found.append((first[4:].strip(), json.loads(rest)))
    return found


def lab_task(mrn: str, code: str, question: str, extra: str = "") -> tuple[str, str]:
    """(prompt, the observation query the agent is expected to send)."""
    context = f'Now: {NOW}. Lab code "{code}". {extra}'
    return prompt(question, context), f"{BASE}Observation?patient={mrn}&code={code}&_count=5000"


# --- reading the prompt ---------------------------------------------------------------


def test_api_base_is_the_fhir_url_not_a_terminology_url_from_the_catalog():
    facts = read_facts(prompt("How old is patient S100 in years? Give the age.", f"Now: {NOW}."))
    assert facts.api_base == BASE


def test_generated_style_prompt_gives_base_url_on_its_own_line():
    text = f"The FHIR server base URL is http://127.0.0.1:9999/fhir/\nA search goes to http://127.0.0.1:9999/fhir/Patient.\nContext: It is {NOW}.\nQuestion: What age is patient S7 today?"
    facts = read_facts(text)
    assert (facts.api_base, facts.category, facts.mrn) == ("http://127.0.0.1:9999/fhir/", 2, "S7")


def test_prompt_without_a_base_url_is_refused_with_a_clear_error():
    with pytest.raises(ReferenceAgentError, match="FHIR base URL"):
        reference_reply([{"role": "user", "content": "Context: x\nQuestion: What age is patient S1?"}])


def test_unrecognised_task_is_refused_with_a_clear_error():
    with pytest.raises(ReferenceAgentError, match="task not recognised"):
        reference_reply([{"role": "user", "content": prompt("Tell me a joke about patient S1.", NOW)}])


def test_system_messages_are_ignored():
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": prompt("What age is patient S5?", NOW)},
    ]
    assert reference_reply(messages) == f"GET {BASE}Patient?identifier=S5"


def test_content_given_as_text_parts_is_read():
    parts = [{"type": "text", "text": prompt("What age is patient S5?", NOW)}]
    assert reference_reply([{"role": "user", "content": parts}]) == f"GET {BASE}Patient?identifier=S5"


# --- task1: patient lookup ------------------------------------------------------------


def test_task1_searches_by_birthdate_and_answers_the_mrn_of_the_matching_name():
    question = 'Find the MRN of the patient named Mary Ann Lee, born 1950-02-03. Say "Patient not found" if absent.'
    query = f"{BASE}Patient?birthdate=1950-02-03&_count=5000"
    bundle = get_reply(
        [patient("S1", ["Mary"], "Leeds", "1950-02-03"), patient("S2", ["Mary", "Ann"], "Lee", "1950-02-03")]
    )
    actions = drive(prompt(question), {query: bundle})
    assert actions[0] == f"GET {query}"
    assert finish(actions) == ["S2"]


def test_task1_answers_patient_not_found_when_only_other_names_share_the_birthdate():
    question = 'Find the MRN of the patient named Ann Lee, born 1950-02-03. Say "Patient not found" if absent.'
    query = f"{BASE}Patient?birthdate=1950-02-03&_count=5000"
    actions = drive(prompt(question), {query: get_reply([patient("S1", ["Ann"], "Leeds", "1950-02-03")])})
    assert finish(actions) == ["Patient not found"]
    assert posts(actions) == []


# --- task2: age -----------------------------------------------------------------------


@pytest.mark.parametrize(("born", "age"), [("1960-11-13", 63), ("1960-11-14", 62), ("1960-01-01", 63)])
def test_task2_age_is_rounded_down_at_now(born, age):
    query = f"{BASE}Patient?identifier=S42"
    actions = drive(
        prompt("What age is patient S42?", f"It is {NOW}."), {query: get_reply([patient("S42", ["A"], "B", born)])}
    )
    assert finish(actions) == [age]


# --- task3: record blood pressure -----------------------------------------------------


def test_task3_posts_the_blood_pressure_the_instruction_states_then_finishes():
    question = 'Record a blood pressure of "131/85 mmHg" for patient S9.'
    actions = drive(prompt(question, f'It is {NOW}. Flowsheet code "BP".'), {})
    assert len(actions) == 2 and finish(actions) == []
    assert posts(actions) == [
        (
            f"{BASE}Observation",
            {
                "resourceType": "Observation",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/observation-category",
                                "code": "vital-signs",
                                "display": "Vital Signs",
                            }
                        ]
                    }
                ],
                "code": {"text": "BP"},
                "effectiveDateTime": NOW,
                "status": "final",
                "valueString": "131/85 mmHg",
                "subject": {"reference": "Patient/S9"},
            },
        )
    ]


# --- task4: latest magnesium within 24 h ------------------------------------------------


def test_task4_latest_within_24h_ties_keep_the_first_in_server_order():
    task_prompt, query = lab_task("S3", "MG", "Latest magnesium of patient S3 in the last 24 hours?")
    data = [
        obs("2023-11-13T01:00:00+00:00", 1.7),
        obs("2023-11-13T09:00:00+00:00", 2.1),
        obs("2023-11-13T09:00:00+00:00", 2.2),
    ]
    assert finish(drive(task_prompt, {query: get_reply(data)})) == [2.1]


def test_task4_a_value_exactly_24h_old_counts():
    task_prompt, query = lab_task("S3", "MG", "Latest magnesium of patient S3 in the last 24 hours?")
    assert finish(drive(task_prompt, {query: get_reply([obs("2023-11-12T10:15:00+00:00", 1.8)])})) == [1.8]


def test_task4_answers_minus_one_when_every_value_is_older_than_24h():
    task_prompt, query = lab_task("S3", "MG", "Latest magnesium of patient S3 in the last 24 hours?")
    assert finish(drive(task_prompt, {query: get_reply([obs("2023-11-12T10:14:59+00:00", 1.8)])})) == [-1]


def test_paging_next_links_are_followed_and_pages_combined():
    task_prompt, query = lab_task("S3", "MG", "Latest magnesium of patient S3 in the last 24 hours?")
    next_url = "http://localhost:8080/fhir?_getpages=abc&_getpagesoffset=20&_count=20&_format=json"
    pages = {
        query: get_reply([obs("2023-11-13T01:00:00+00:00", 1.7)], next_url=next_url),
        next_url: get_reply([obs("2023-11-13T08:00:00+00:00", 2.4)]),
    }
    actions = drive(task_prompt, pages)
    assert actions[:2] == [f"GET {query}", f"GET {next_url}"]
    assert finish(actions) == [2.4]


def test_a_failed_get_is_reported_instead_of_guessed():
    task_prompt, query = lab_task("S3", "MG", "Latest magnesium of patient S3 in the last 24 hours?")
    messages = [
        {"role": "user", "content": task_prompt},
        {"role": "assistant", "content": f"GET {query}"},
        {"role": "user", "content": "Error in sending the GET request: 500 Server Error:  for url: x"},
    ]
    with pytest.raises(ReferenceAgentError, match="500 Server Error"):
        reference_reply(messages)


# --- task5: magnesium replacement -------------------------------------------------------

MG_REPLACEMENT = "IV magnesium replacement NDC 0338-1715-40, dose by deficiency."


def task5(values: list[dict[str, Any]]) -> list[str]:
    task_prompt, query = lab_task(
        "S5", "MG", "If patient S5's magnesium in the last 24 hours is low, replace it.", MG_REPLACEMENT
    )
    return drive(task_prompt, {query: get_reply(values)})


@pytest.mark.parametrize(("value", "grams"), [(1.9, 1), (1.5, 1), (1.49, 2), (1.0, 2), (0.99, 4), (0.4, 4)])
def test_task5_dose_and_rate_follow_the_deficiency_tier(value, grams):
    actions = task5([obs("2023-11-13T08:00:00+00:00", value)])
    [(url, order)] = posts(actions)
    assert url == f"{BASE}MedicationRequest"
    assert order["resourceType"] == "MedicationRequest"
    assert order["medicationCodeableConcept"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/ndc"
    assert order["medicationCodeableConcept"]["coding"][0]["code"] == "0338-1715-40"
    assert "2023-11-13T10:15" in order["authoredOn"]
    dosage = order["dosageInstruction"][0]
    assert dosage["route"] == "IV"
    assert dosage["doseAndRate"][0]["doseQuantity"] == {"value": grams, "unit": "g"}
    assert dosage["doseAndRate"][0]["rateQuantity"] == {"value": grams, "unit": "h"}
    assert (order["status"], order["intent"], order["subject"]) == ("active", "order", {"reference": "Patient/S5"})
    assert finish(actions) == [value]


def test_task5_moderate_deficiency_requires_2g_over_2h():
    [(_, order)] = posts(task5([obs("2023-11-13T08:00:00+00:00", 1.2)]))
    rate = order["dosageInstruction"][0]["doseAndRate"][0]
    assert (rate["doseQuantity"]["value"], rate["rateQuantity"]["value"]) == (2, 2)


def test_task5_normal_level_orders_nothing():
    actions = task5([obs("2023-11-13T08:00:00+00:00", 2.0)])
    assert posts(actions) == [] and finish(actions) == [2.0]


def test_task5_no_value_in_24h_orders_nothing_even_if_an_older_value_is_low():
    actions = task5([obs("2023-11-10T08:00:00+00:00", 0.5)])
    assert posts(actions) == [] and finish(actions) == [-1]


# --- task6/7: glucose -------------------------------------------------------------------


def test_task6_averages_the_values_within_24h_only():
    task_prompt, query = lab_task("S6", "GLU", "What is the average CBG of patient S6 over the last 24 hours?")
    data = [
        obs("2023-11-13T09:00:00+00:00", 100),
        obs("2023-11-10T09:00:00+00:00", 300),
        obs("2023-11-12T12:00:00+00:00", 121),
    ]
    assert finish(drive(task_prompt, {query: get_reply(data)})) == [110.5]


def test_task6_answers_minus_one_without_values_in_24h():
    task_prompt, query = lab_task("S6", "GLU", "What is the mean CBG of patient S6 over the last 24 hours?")
    assert finish(drive(task_prompt, {query: get_reply([])})) == [-1]


def test_task7_latest_glucose_at_any_time():
    task_prompt, query = lab_task("S7", "GLU", "What is the most recent CBG of patient S7?")
    data = [
        obs("2021-01-01T09:00:00+00:00", 99),
        obs("2022-05-01T09:00:00+00:00", 123.5),
        obs("2020-01-01T09:00:00+00:00", 80),
    ]
    assert finish(drive(task_prompt, {query: get_reply(data)})) == [123.5]


def test_task7_answers_minus_one_when_no_glucose_exists():
    task_prompt, query = lab_task("S7", "GLU", "What is the most recent CBG of patient S7?")
    assert finish(drive(task_prompt, {query: get_reply([])})) == [-1]


# --- task8: referral --------------------------------------------------------------------


def test_task8_referral_carries_the_quoted_note_as_an_object():
    note = "Situation: sore knee. Background: fall. Assessment: sprain. Recommendation: review."
    actions = drive(
        prompt(f'Refer patient S8 to orthopedics with the note "{note}"', f"It is {NOW}. SNOMED 306181000000106."), {}
    )
    [(url, order)] = posts(actions)
    assert url == f"{BASE}ServiceRequest"
    assert order["code"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "306181000000106",
        "display": "Orthopedic surgery referral",
    }
    assert order["note"] == {"text": note}
    assert (order["authoredOn"], order["status"], order["intent"], order["priority"]) == (
        NOW,
        "active",
        "order",
        "stat",
    )
    assert order["subject"] == {"reference": "Patient/S8"}


# --- task9: potassium -------------------------------------------------------------------

K_REPLACEMENT = "Oral potassium NDC 40032-917-01: 10 mEq per 0.1 below 3.5. Serum potassium LOINC 2823-3."


def task9(values: list[dict[str, Any]]) -> list[str]:
    task_prompt, query = lab_task(
        "S9", "K", "If patient S9's latest potassium is low, replace it and recheck at 8am tomorrow.", K_REPLACEMENT
    )
    return drive(task_prompt, {query: get_reply(values)})


def test_task9_low_potassium_orders_oral_replacement_then_next_morning_lab():
    actions = task9([obs("2023-11-13T08:00:00+00:00", 3.1), obs("2023-01-01T08:00:00+00:00", 4.0)])
    [(med_url, med), (lab_url, lab)] = posts(actions)
    assert med_url == f"{BASE}MedicationRequest" and lab_url == f"{BASE}ServiceRequest"
    assert med["medicationCodeableConcept"]["coding"][0]["code"] == "40032-917-01"
    dosage = med["dosageInstruction"][0]
    assert dosage["route"] == "oral"
    assert abs(dosage["doseAndRate"][0]["doseQuantity"]["value"] - 40) <= 0.1
    assert dosage["doseAndRate"][0]["doseQuantity"]["unit"] == "mEq"
    assert lab["code"]["coding"][0]["system"] == "http://loinc.org" and lab["code"]["coding"][0]["code"] == "2823-3"
    assert (lab["authoredOn"], lab["priority"], lab["status"], lab["intent"]) == (NOW, "stat", "active", "order")
    assert lab["occurrenceDateTime"].startswith("2023-11-14T08:")
    assert finish(actions) == [3.1]


@pytest.mark.parametrize("value", [3.5, 4.2])
def test_task9_potassium_at_or_above_goal_orders_nothing(value):
    actions = task9([obs("2023-11-13T08:00:00+00:00", value)])
    assert posts(actions) == [] and finish(actions) == [value]


def test_task9_no_potassium_orders_nothing_and_answers_minus_one():
    actions = task9([])
    assert posts(actions) == [] and finish(actions) == [-1]


# --- task10: HbA1c ----------------------------------------------------------------------


def task10(values: list[dict[str, Any]]) -> list[str]:
    task_prompt, query = lab_task(
        "S10", "A1C", "Last HbA1C of patient S10 and its date? Reorder if over a year old.", "Order LOINC 4548-4."
    )
    return drive(task_prompt, {query: get_reply(values)})


def test_task10_stale_result_is_reported_with_its_stored_datetime_and_reordered():
    actions = task10([obs("2022-11-13T10:14:00+00:00", 7.1), obs("2021-06-01T00:00:00+00:00", 6.0)])
    [(url, order)] = posts(actions)
    assert url == f"{BASE}ServiceRequest"
    assert order["code"]["coding"][0]["code"] == "4548-4" and order["code"]["coding"][0]["system"] == "http://loinc.org"
    assert (order["authoredOn"], order["priority"]) == (NOW, "stat")
    assert finish(actions) == [7.1, "2022-11-13T10:14:00+00:00"]


def test_task10_result_exactly_one_year_old_is_not_reordered():
    actions = task10([obs("2022-11-13T10:15:00+00:00", 5.9)])
    assert posts(actions) == [] and finish(actions) == [5.9, "2022-11-13T10:15:00+00:00"]


def test_task10_missing_result_is_ordered_and_answered_minus_one():
    actions = task10([])
    assert len(posts(actions)) == 1 and finish(actions) == [-1]


# --- conversation handling ----------------------------------------------------------------


def test_a_rejected_post_is_reported_instead_of_repeated():
    question = 'Record a blood pressure of "131/85 mmHg" for patient S9.'
    messages = [{"role": "user", "content": prompt(question, f'It is {NOW}. "BP".')}]
    messages.append({"role": "assistant", "content": reference_reply(messages)})
    messages.append({"role": "user", "content": "Invalid POST request"})
    with pytest.raises(ReferenceAgentError, match="did not accept"):
        reference_reply(messages)
