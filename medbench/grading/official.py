"""The ten MedAgentBench graders, deciding exactly as the upstream reference graders do.

Each ``grade_taskN(task, outcome, gateway, api_base, rules=OFFICIAL)`` reads only
``outcome.result`` and ``outcome.history``, the task and live GETs, and returns a ``Verdict``.
The points where upstream has a QUIRK (GRADING.md) are the fields of ``Rules``; ``OFFICIAL``
reproduces them and ``medbench.grading.corrected`` swaps in documented fixes, so both modes share one copy of every other decision.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from medbench.clock import NOW_ISO
from medbench.grading.checks import (
    Incorrect,
    expect_answer,
    expect_contains,
    expect_equal,
    field,
    parse_answer,
    require,
)
from medbench.grading.fhir_reads import (
    Gateway,
    ReadError,
    age_at_now,
    latest,
    read_birth_date,
    read_observations,
    within_24h,
)
from medbench.grading.transcript import (
    Post,
    TranscriptError,
    Turn,
    mentions_post,
    official_accepted_posts,
    official_post_evidence,
)
from medbench.outcomes import Verdict
from medbench.tasks.task import Task

BP_VALUE = "118/77 mmHg"
REFERRAL_NOTE = (
    "Situation: acute left knee injury, Background: radiology report indicates ACL tear. "
    "Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to "
    "evaluate and provide management recommendations."
)
NOW_MINUTE = NOW_ISO[:16]
NDC = "http://hl7.org/fhir/sid/ndc"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
VITAL_SIGNS = {"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}
A1C_STALE_BEFORE = datetime.fromisoformat("2022-11-13T10:15:00+00:00")


class Outcome(Protocol):
    """What graders need of a ``TaskOutcome``."""

    result: str | None
    history: list[dict[str, str]]


@dataclass(frozen=True)
class Rules:
    """The decisions that differ between the official and the corrected grader."""

    name: str
    has_post: Callable[[Sequence[Turn]], bool]
    post_evidence: Callable[[Sequence[Turn]], str]
    accepted_posts: Callable[[Sequence[Turn]], list[Post]]
    bp_value: Callable[[Task], str]
    referral_note: Callable[[Task], str]
    note_contains: Callable[[Any, str], bool]
    iv_route: Callable[[Any], bool]
    oral_route: Callable[[Any], bool]
    quantity_is: Callable[[Any, float, str], bool]
    magnesium_rate_is: Callable[[Any, float, float], bool]
    follow_paging: bool


def sol_or(task: Task, constant: str) -> str:
    """``task.sol[0]`` for generated tasks that carry their constant, else the official one."""
    return task.sol[0] if task.sol else constant


def _official_note_contains(note: Any, sentence: str) -> bool:
    return sentence in field(note, "text", what="note")


def _official_oral_route(route: Any) -> bool:
    return isinstance(route, str) and route.lower().strip() == "oral"


def _official_magnesium_rate_is(dose_and_rate: Any, dose: float, hours: float) -> bool:
    return field(dose_and_rate, "rateQuantity", what="doseAndRate[0]") == {"value": hours, "unit": "h"}


OFFICIAL = Rules(
    name="official",
    has_post=mentions_post,
    post_evidence=official_post_evidence,
    accepted_posts=official_accepted_posts,
    bp_value=lambda task: sol_or(task, BP_VALUE),
    referral_note=lambda task: sol_or(task, REFERRAL_NOTE),
    note_contains=_official_note_contains,
    iv_route=lambda route: route == "IV",
    oral_route=_official_oral_route,
    quantity_is=lambda quantity, value, unit: quantity == {"value": value, "unit": unit},
    magnesium_rate_is=_official_magnesium_rate_is,
    follow_paging=False,
)

GraderBody = Callable[[Task, Outcome, Gateway, str, Rules], None]
Grader = Callable[..., Verdict]


def _grader(category: int) -> Callable[[GraderBody], Grader]:
    """Turn a body that raises ``Incorrect`` into a grader returning a ``Verdict``.

    Upstream counts any exception inside a grader as incorrect; so do we, naming it.
    """

    def wrap(body: GraderBody) -> Grader:
        @functools.wraps(body)
        def grade_task(
            task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules = OFFICIAL
        ) -> Verdict:
            try:
                body(task, outcome, gateway, api_base, rules)
            except (Incorrect, ReadError, TranscriptError) as exc:
                return Verdict(False, f"task{category}: {exc}")
            except Exception as exc:  # noqa: BLE001 - upstream: any exception means incorrect
                return Verdict(False, f"task{category}: grader error {type(exc).__name__}: {exc}")
            return Verdict(True)

        return grade_task

    return wrap


def _mrn(task: Task) -> str:
    require(task.eval_MRN is not None, f"task {task.id} has no eval_MRN")
    return str(task.eval_MRN)


def _no_post(outcome: Outcome, rules: Rules, why: str) -> None:
    """A read-only branch: any POST the rule sees is incorrect; the reason says what it saw."""
    if rules.has_post(outcome.history):
        raise Incorrect(f"{rules.post_evidence(outcome.history)}, but {why}")


def _posts(outcome: Outcome, rules: Rules, count: int) -> list[Post]:
    posts = rules.accepted_posts(outcome.history)
    noun = "POST" if count == 1 else "POSTs"
    require(len(posts) == count, f"expected {count} accepted {noun}, found {len(posts)}")
    return posts


def _expect_url(post: Post, expected: str) -> None:
    require(post.url == expected, f"POST url {post.url!r} != {expected!r}")


def _expect_order_basics(payload: Any, task: Task, priority: bool) -> None:
    expect_equal(payload, ("status",), "active")
    expect_equal(payload, ("intent",), "order")
    if priority:
        expect_equal(payload, ("priority",), "stat")
    expect_equal(payload, ("subject",), {"reference": f"Patient/{_mrn(task)}"})


def _expect_medication(payload: Any, ndc: str) -> None:
    expect_equal(payload, ("resourceType",), "MedicationRequest")
    expect_equal(payload, ("medicationCodeableConcept", "coding", 0, "system"), NDC)
    expect_equal(payload, ("medicationCodeableConcept", "coding", 0, "code"), ndc)
    expect_contains(payload, ("authoredOn",), NOW_MINUTE)


def _expect_service_request(payload: Any, system: str, code: str) -> None:
    expect_equal(payload, ("resourceType",), "ServiceRequest")
    expect_equal(payload, ("code", "coding", 0, "system"), system)
    expect_equal(payload, ("code", "coding", 0, "code"), code)
    expect_equal(payload, ("authoredOn",), NOW_ISO)


def _ref(value: Any) -> list[Any]:
    return [value if value is not None else -1]


@_grader(1)
def grade_task1(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Patient lookup: no POST, and the answer equals the task's solution list."""
    _no_post(outcome, rules, "task1 is read-only")
    if task.sol is None:
        raise Incorrect(f"task {task.id} has no sol")
    expect_answer(parse_answer(outcome.result), task.sol)


@_grader(2)
def grade_task2(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Age: no POST, and the answer equals [whole years from birthDate to NOW]."""
    _no_post(outcome, rules, "task2 is read-only")
    age = age_at_now(read_birth_date(gateway, api_base, _mrn(task)))
    expect_answer(parse_answer(outcome.result), [age])


@_grader(3)
def grade_task3(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Record blood pressure: one accepted Observation POST; the FINISH result is not checked."""
    (post,) = _posts(outcome, rules, 1)
    _expect_url(post, f"{api_base}Observation")
    check_bp_observation(post.payload, task, rules)


def check_bp_observation(p: Any, task: Task, rules: Rules) -> None:
    """The task3 Observation: vital-signs category, code text BP, now, final, the stated value, the patient."""
    expect_equal(p, ("resourceType",), "Observation")
    category = field(p, "category")
    require(len(category) == 1, f"category has {len(category)} items, expected 1")
    coding = field(p, "category", 0, "coding")
    require(len(coding) == 1, f"category[0].coding has {len(coding)} items, expected 1")
    expect_equal(p, ("category", 0, "coding", 0), VITAL_SIGNS)
    expect_equal(p, ("code",), {"text": "BP"})
    expect_equal(p, ("effectiveDateTime",), NOW_ISO)
    expect_equal(p, ("status",), "final")
    expect_equal(p, ("valueString",), rules.bp_value(task))
    expect_equal(p, ("subject",), {"reference": f"Patient/{_mrn(task)}"})


@_grader(4)
def grade_task4(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Latest magnesium within 24 h: no POST, answer equals [value] or [-1] exactly."""
    _no_post(outcome, rules, "task4 is read-only")
    recent = latest(within_24h(read_observations(gateway, api_base, _mrn(task), "MG", rules.follow_paging)))
    expect_answer(parse_answer(outcome.result), _ref(recent.value if recent else None))


def magnesium_tier(value: float) -> tuple[int, int]:
    """(grams, hours) of IV magnesium for a low level: <1 -> 4/4, <1.5 -> 2/2, else 1/1."""
    if value < 1:
        return 4, 4
    if value < 1.5:
        return 2, 2
    return 1, 1


@_grader(5)
def grade_task5(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Magnesium check and IV replacement by tier; the answer may be [value] or []."""
    recent = latest(within_24h(read_observations(gateway, api_base, _mrn(task), "MG", rules.follow_paging)))
    if recent is None:
        _no_post(outcome, rules, "no magnesium was measured in the last 24 h, so no order was expected")
        return
    value = recent.value
    if value > 1.9:
        _no_post(outcome, rules, f"magnesium {value} is not low (above 1.9), so no order was expected")
    else:
        (post,) = _posts(outcome, rules, 1)
        _expect_url(post, f"{api_base}MedicationRequest")
        check_magnesium_order(post.payload, task, value, rules)
    expect_answer(parse_answer(outcome.result), [value], or_empty=True)


def check_magnesium_order(p: Any, task: Task, value: float, rules: Rules) -> None:
    """The task5 order for magnesium ``value``: IV magnesium sulfate, dose and rate of its tier, active, the patient."""
    _expect_medication(p, "0338-1715-40")
    route = field(p, "dosageInstruction", 0, "route")
    require(rules.iv_route(route), f"dosageInstruction[0].route is {route!r}, expected 'IV'")
    dose, hours = magnesium_tier(value)
    dose_and_rate = field(p, "dosageInstruction", 0, "doseAndRate", 0)
    dose_quantity = field(dose_and_rate, "doseQuantity", what="doseAndRate[0]")
    require(
        rules.quantity_is(dose_quantity, dose, "g"),
        f"doseQuantity is {dose_quantity!r}, expected {dose} g for magnesium {value}",
    )
    require(
        rules.magnesium_rate_is(dose_and_rate, dose, hours),
        f"rate in {dose_and_rate!r} is not {dose} g over {hours} h for magnesium {value}",
    )
    _expect_order_basics(p, task, priority=False)


@_grader(6)
def grade_task6(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Average glucose over 24 h: no POST, one-element answer within 0.1 of the mean (or -1)."""
    _no_post(outcome, rules, "task6 is read-only")
    total, count = 0.0, 0.0
    for m in within_24h(read_observations(gateway, api_base, _mrn(task), "GLU", rules.follow_paging)):
        total += m.value
        count += 1
    ref = total / count if count != 0 else -1
    answer = parse_answer(outcome.result)
    try:
        close = len(answer) == 1 and abs(answer[0] - ref) < 0.1
    except (TypeError, KeyError, IndexError):
        close = False
    require(close, f"answer {answer!r} is not a one-element list within 0.1 of {ref!r}")


@_grader(7)
def grade_task7(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Latest glucose at any time: no POST, answer equals [value] or [-1] exactly."""
    _no_post(outcome, rules, "task7 is read-only")
    last = latest(read_observations(gateway, api_base, _mrn(task), "GLU", rules.follow_paging))
    expect_answer(parse_answer(outcome.result), _ref(last.value if last else None))


@_grader(8)
def grade_task8(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Orthopedic referral: one accepted ServiceRequest POST with the SBAR note; result not checked."""
    (post,) = _posts(outcome, rules, 1)
    _expect_url(post, f"{api_base}ServiceRequest")
    check_referral(post.payload, task, rules)


def check_referral(p: Any, task: Task, rules: Rules) -> None:
    """The task8 referral: SNOMED orthopedic referral, stat, now, the patient, the SBAR note."""
    _expect_service_request(p, SNOMED, "306181000000106")
    _expect_order_basics(p, task, priority=True)
    note = field(p, "note")
    sentence = rules.referral_note(task)
    require(rules.note_contains(note, sentence), f"note {note!r} does not contain the referral text {sentence!r}")


def potassium_dose_meq(value: float) -> float:
    """10 mEq of oral potassium per 0.1 below the 3.5 goal."""
    return (3.5 - value) / 0.1 * 10


@_grader(9)
def grade_task9(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """Potassium: if the latest is below 3.5, an oral order then a next-morning lab, in that order."""
    last = latest(read_observations(gateway, api_base, _mrn(task), "K", rules.follow_paging))
    value = last.value if last else None
    if value is None or value >= 3.5:
        why = "no potassium value is on file" if value is None else f"potassium {value} is not low (3.5 or above)"
        _no_post(outcome, rules, f"{why}, so no order was expected")
    else:
        medication, lab = _posts(outcome, rules, 2)
        _expect_url(medication, f"{api_base}MedicationRequest")
        check_potassium_order(medication.payload, task, value, rules)
        _expect_url(lab, f"{api_base}ServiceRequest")
        check_potassium_lab(lab.payload, task)
    expect_answer(parse_answer(outcome.result), _ref(value), or_empty=True)


def check_potassium_order(p: Any, task: Task, value: float, rules: Rules) -> None:
    """The task9 order for potassium ``value``: oral potassium chloride, 10 mEq per 0.1 below 3.5, active, the patient."""
    _expect_medication(p, "40032-917-01")
    route = field(p, "dosageInstruction", 0, "route")
    require(rules.oral_route(route), f"dosageInstruction[0].route is {route!r}, expected 'oral'")
    dose = potassium_dose_meq(value)
    given = field(p, "dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "value")
    try:
        close = abs(given - dose) <= 0.1
    except TypeError:
        close = False
    require(close, f"doseQuantity.value is {given!r}, expected {dose} (within 0.1) for potassium {value}")
    expect_equal(p, ("dosageInstruction", 0, "doseAndRate", 0, "doseQuantity", "unit"), "mEq")
    _expect_order_basics(p, task, priority=False)


def check_potassium_lab(p: Any, task: Task) -> None:
    """The task9 follow-up: a stat serum potassium (LOINC 2823-3) for 8 am the next morning."""
    _expect_service_request(p, LOINC, "2823-3")
    _expect_order_basics(p, task, priority=True)
    expect_contains(p, ("occurrenceDateTime",), "2023-11-14T08:")


@_grader(10)
def grade_task10(task: Task, outcome: Outcome, gateway: Gateway, api_base: str, rules: Rules) -> None:
    """HbA1c: answer [value, time as stored] (or [-1]); order a new test if none or over a year old."""
    last = latest(read_observations(gateway, api_base, _mrn(task), "A1C", rules.follow_paging))
    ref = [last.value, last.time_text] if last else [-1]
    if last is None or last.time < A1C_STALE_BEFORE:
        (post,) = _posts(outcome, rules, 1)
        _expect_url(post, f"{api_base}ServiceRequest")
        check_a1c_order(post.payload, task)
    else:
        _no_post(outcome, rules, f"the last HbA1c ({last.time_text}) is less than a year old, so no order was expected")
    expect_answer(parse_answer(outcome.result), ref, or_empty=True)


def check_a1c_order(p: Any, task: Task) -> None:
    """The task10 order: a stat HbA1c (LOINC 4548-4), now, the patient."""
    _expect_service_request(p, LOINC, "4548-4")
    _expect_order_basics(p, task, priority=True)


GRADERS: dict[int, Grader] = {
    1: grade_task1,
    2: grade_task2,
    3: grade_task3,
    4: grade_task4,
    5: grade_task5,
    6: grade_task6,
    7: grade_task7,
    8: grade_task8,
    9: grade_task9,
    10: grade_task10,
}
