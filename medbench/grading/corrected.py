"""The corrected grader mode: the official decisions with each GRADING.md QUIRK fixed.

Every fix is a named function here and a line in docs/graders.md (`corrected`); everything else is
decided by the official graders (``medbench.grading.official``) with ``rules=CORRECTED``.
Corrected verdicts are not comparable with published MedAgentBench scores; reports name the mode.
"""

from __future__ import annotations

import re
from typing import Any

from medbench.grading.checks import Incorrect
from medbench.grading.official import BP_VALUE, REFERRAL_NOTE, Rules, sol_or
from medbench.grading.transcript import corrected_accepted_posts, corrected_has_post, corrected_post_evidence
from medbench.tasks.task import Task

_BP_IN_TEXT = re.compile(r"\b(\d{2,3}/\d{2,3} ?mmHg)")
_IV_NAMES = {"iv", "intravenous", "intravenous route"}
_ORAL_NAMES = {"oral", "oral route", "po"}


def bp_from_instruction(task: Task) -> str:
    """The blood pressure the instruction states (official: always "118/77 mmHg")."""
    match = _BP_IN_TEXT.search(task.instruction)
    return match.group(1) if match else sol_or(task, BP_VALUE)


def note_contains(note: Any, sentence: str) -> bool:
    """The referral text in ``note.text``, or in any Annotation of a FHIR ``note`` list."""
    annotations = note if isinstance(note, list) else [note]
    for annotation in annotations:
        text = annotation.get("text") if isinstance(annotation, dict) else None
        if isinstance(text, str) and sentence in text:
            return True
    return False


def route_names(route: Any) -> set[str]:
    """Lower-cased names a route goes by: a plain string, or a CodeableConcept's text/codes/displays."""
    if isinstance(route, str):
        return {route.strip().lower()}
    if not isinstance(route, dict):
        return set()
    names = [route.get("text")]
    for coding in route.get("coding") or []:
        if isinstance(coding, dict):
            names += [coding.get("code"), coding.get("display")]
    return {name.strip().lower() for name in names if isinstance(name, str)}


def quantity_is(quantity: Any, value: float, unit: str) -> bool:
    """value and unit match; extra Quantity keys (system, code) are allowed (official: exact dict)."""
    return isinstance(quantity, dict) and quantity.get("value") == value and quantity.get("unit") == unit


def magnesium_rate_is(dose_and_rate: Any, dose: float, hours: float) -> bool:
    """The infusion rate as official ({hours, "h"}), as a real rate (dose/hours "g/h"), or a rateRatio."""
    if not isinstance(dose_and_rate, dict):
        raise Incorrect(f"doseAndRate[0] is {dose_and_rate!r}, not an object")
    rate = dose_and_rate.get("rateQuantity")
    if quantity_is(rate, hours, "h") or quantity_is(rate, dose / hours, "g/h"):
        return True
    ratio = dose_and_rate.get("rateRatio")
    if not isinstance(ratio, dict):
        return False
    return quantity_is(ratio.get("numerator"), dose, "g") and quantity_is(ratio.get("denominator"), hours, "h")


def _referral_note(task: Task) -> str:
    return sol_or(task, REFERRAL_NOTE)


CORRECTED = Rules(
    name="corrected",
    has_post=corrected_has_post,
    post_evidence=corrected_post_evidence,
    accepted_posts=corrected_accepted_posts,
    bp_value=bp_from_instruction,
    referral_note=_referral_note,
    note_contains=note_contains,
    iv_route=lambda route: bool(route_names(route) & _IV_NAMES),
    oral_route=lambda route: bool(route_names(route) & _ORAL_NAMES),
    quantity_is=quantity_is,
    magnesium_rate_is=magnesium_rate_is,
    follow_paging=True,
)
