"""The built-in models on v2: the reference agent solves every branch through the tool protocol, under all
three graders; `do-nothing` finishes at once. Driven through the built-in server's request handling."""

from __future__ import annotations

from datetime import datetime

import pytest

from helpers.v2_ehr import API, FakeEhr, condition, medication, observation, procedure, service_request, v2_task
from medbench.agent.loop import LoopConfig
from medbench.agent.v2_loop import run_v2_task
from medbench.grading.v2 import grade_v2
from medbench.models.builtin.server import chat_completion
from medbench.models.tool_reply import read_tool_reply
from medbench.tasks.task import TaskSet

RUN = datetime.fromisoformat("2026-12-05T02:00:00+00:00")
CONFIG = LoopConfig(post_mode="execute", api_base=API)


class BuiltIn:
    """A built-in model answered by the server's own request handler (no socket needed here)."""

    def __init__(self, name):
        self.name = name

    def complete_with_tools(self, messages, tools):
        body = chat_completion({"model": self.name, "messages": messages, "tools": tools})
        return read_tool_reply(body["choices"][0], body["usage"], 0.0, 0)


CONTEXTS = {
    1: "Prior CT codes IMGCT0491 or IMGIL0001; order CPT 74177.",
    2: "Use heparin 5000 units SC q8h; one active order should remain.",
    3: "Heart rate code 'HEARTRATE'. It's 2023-11-13T12:00:00+00:00 now",
    4: "The catheter procedure code is 'NUR1373'. It's 2023-11-11T09:00:00+00:00 now.",
    5: "ICD-10 C64.2; CT CPT 74177; IR referral CON417.",
    6: "Codes 'TSH' and 'FT4'.",
    7: "Code 'QTCINTERVAL'; prolonged means > 500 ms; ECG SNOMED 445118002.",
    8: "Opioids: hydromorphone, oxycodone, fentanyl, hydrocodone, morphine; order naloxone 4 mg nasal spray.",
    9: "It's 2024-01-09T00:00:00+00:00 now. CPT 90686.",
    10: "It's 2023-11-07T12:00:00+00:00 now. Procedure 'COVIDVACCINE' or MedicationRequest 'COVID-19 VAC'; CPT 91320.",
}

CHARTS = {
    "1 no CT": (1, []),
    "1 stale CT": (1, [procedure("IMGCT0491", "2021-05-01T00:00:00+00:00")]),
    "2 none": (2, []),
    "2 one heparin": (2, [medication("HEPARIN 5,000 UNIT/0.5 ML INJ")]),
    "2 one other": (2, [medication("ENOXAPARIN 40 MG")]),
    "2 duplicates with heparin": (2, [medication("HEPARIN 5000 UNIT"), medication("APIXABAN 5 MG")]),
    "2 duplicates without heparin": (2, [medication("ENOXAPARIN 40 MG"), medication("WARFARIN 5 MG")]),
    "3 both windows": (
        3,
        [
            observation("HEARTRATE", "2023-11-13T11:00:00+00:00", 81),
            observation("HEARTRATE", "2023-11-13T02:00:00+00:00", 70),
            {**observation("HEARTRATE", "2023-11-13T10:00:00+00:00", 0), "valueQuantity": {}},
        ],
    ),
    "3 none in 12 h": (3, [observation("HEARTRATE", "2023-11-10T11:00:00+00:00", 81)]),
    "4 no catheter": (4, []),
    "4 recent": (4, [procedure("NUR1373", "2023-11-10T09:00:00+00:00")]),
    "4 due": (4, [procedure("NUR1373", "2023-11-05T09:00:00+00:00"), service_request("NUR1373", "completed")]),
    "5 no diagnosis": (5, [condition("C64.9")]),
    "5 recent CT": (5, [condition("C64.2"), procedure("74177", "2023-10-01T00:00:00+00:00")]),
    "5 CT due": (5, [condition("C64.2"), procedure("IMGIL0001", "2023-01-01T00:00:00+00:00")]),
    "6 repeat high": (
        6,
        [
            observation("TSH", "2023-01-01T00:00:00+00:00", 12),
            observation("TSH", "2023-03-01T00:00:00+00:00", 14),
            observation("FT4", "2023-03-01T00:00:00+00:00", 0.7),
        ],
    ),
    "6 borderline": (
        6,
        [observation("TSH", "2023-03-01T00:00:00+00:00", 7), observation("FT4", "2023-03-01T00:00:00+00:00", 1.1)],
    ),
    "6 neither": (6, [observation("TSH", "2023-03-01T00:00:00+00:00", 2.1)]),
    "7 no QTc": (7, []),
    "7 normal": (7, [observation("QTCINTERVAL", "2023-10-01T00:00:00+00:00", 500)]),
    "7 prolonged": (
        7,
        [
            observation("QTCINTERVAL", "2023-10-01T00:00:00+00:00", 530),
            medication("ONDANSETRON 4 MG"),
            medication("HALOPERIDOL 2 MG"),
        ],
    ),
    "8 no opioid": (8, []),
    "8 covered": (8, [medication("OXYCODONE 5 MG"), medication("NALOXONE 4 MG/ACTUATION NASAL SPRAY")]),
    "8 uncovered": (8, [medication("MORPHINE 2 MG"), medication("NALOXONE 4 MG", status="stopped")]),
    "9 recent": (9, [procedure("90686", "2023-10-01T00:00:00+00:00")]),
    "9 stale": (9, [procedure("90686", "2022-10-01T00:00:00+00:00")]),
    "9 none": (9, []),
    "10 recent": (10, [medication("COVID-19 VACCINE MRNA", "completed", "2023-01-01T00:00:00+00:00")]),
    "10 stale": (10, [procedure("COVIDVACCINE", "2022-11-06T00:00:00+00:00")]),
    "10 none": (10, []),
}


def attempt(name, chart):
    category, resources = CHARTS[chart]
    ehr = FakeEhr()
    for resource in resources:
        ehr.add(resource)
    task = v2_task(category, CONTEXTS[category])
    tasks = TaskSet(name="v2-unit", tasks=(task,), prompt_template="system", functions=[], flavour="generated")
    return task, ehr, run_v2_task(task, tasks, BuiltIn(name), ehr, CONFIG)


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_the_reference_agent_passes_every_branch_under_every_grader(chart):
    task, ehr, outcome = attempt("reference", chart)
    assert outcome.status == "completed", outcome.error
    assert outcome.num_turns <= 8
    for mode in ("official", "corrected", "state"):
        verdict = grade_v2(task, outcome, ehr, API, mode, run_started=RUN)
        assert verdict.correct, (mode, verdict.reason, outcome.history)


@pytest.mark.parametrize("chart", ["4 due", "9 none", "2 none", "7 normal", "3 both windows"])
def test_do_nothing_finishes_at_once_and_passes_only_where_nothing_is_due(chart):
    task, ehr, outcome = attempt("do-nothing", chart)
    assert outcome.num_turns == 1 and outcome.result == "[]" and not ehr.writes()
    correct = grade_v2(task, outcome, ehr, API, "official", run_started=RUN).correct
    assert correct is (chart == "7 normal")


def test_over_http_through_the_openai_sdk_the_reference_places_the_due_order():
    from medbench.models.builtin.server import ReferenceServer
    from medbench.models.client import OpenAIChatModel

    ehr = FakeEhr().add(medication("HYDROMORPHONE 2 MG"))
    task = v2_task(8, CONTEXTS[8])
    tasks = TaskSet(name="v2-unit", tasks=(task,), prompt_template="system", functions=[], flavour="generated")
    with ReferenceServer() as server:
        outcome = run_v2_task(task, tasks, OpenAIChatModel("reference", server.base_url, max_retries=0), ehr, CONFIG)
    assert outcome.status == "completed" and outcome.model_calls == 3  # read, create, finish
    assert [w["medicationCodeableConcept"]["text"] for w in ehr.writes()] == ["Naloxone 4 mg nasal spray"]
    assert grade_v2(task, outcome, ehr, API, "state").correct
