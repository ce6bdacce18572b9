"""The state grader (`--grader=state`): writes are judged by what the EHR holds, not by what the agent said.

Execute post-mode sends the agent's POSTs to the embedded server, each attempt in its own write
namespace. This grader reads back, through FHIR searches in that namespace (the gateway it is
given carries the namespace header), every resource the attempt created, and decides tasks 3, 5,
8, 9 and 10 from them: each due order must be there exactly once and pass the corrected grader's
clinical checks (resource type, patient, codes, dose, route, timing, note text), and nothing else
may be there. Read-only tasks and read-only branches keep their answer checks; what they must not
have written is also read from the server. A claimed order that never reached the server, or a
POST the server refused, therefore fails; a POST acknowledged but refused by the official
reading's quirks (a fenced POST, a url with a query string) passes when the server holds the
right resource. The FINISH answer is checked as in the corrected mode.

"Created by this attempt" is `_lastUpdated` after the clinical now: the seeded chart was last
updated at or before it, and a namespace holds only its own attempt's writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from medbench.clock import NOW
from medbench.grading.checks import Incorrect, expect_answer, parse_answer
from medbench.grading.corrected import CORRECTED
from medbench.grading.fhir_reads import Gateway, ReadError, fetch_json, latest, read_observations, within_24h
from medbench.grading.official import (
    A1C_STALE_BEFORE,
    GRADERS,
    Outcome,
    Rules,
    check_a1c_order,
    check_bp_observation,
    check_magnesium_order,
    check_potassium_lab,
    check_potassium_order,
    check_referral,
    magnesium_tier,
    potassium_dose_meq,
)
from medbench.grading.transcript import Turn
from medbench.outcomes import Verdict
from medbench.tasks.task import Task

WRITE_CATEGORIES = frozenset({3, 5, 8, 9, 10})
# `_lastUpdated=gt<this>`: written after the clinical now, i.e. by the attempt (a `Z` keeps `+` out of the query).
CREATED_AFTER = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
_MAX_PAGES = 100


@dataclass(frozen=True)
class Created:
    """One resource the attempt created, as the server returns it."""

    resource_type: str
    id: str
    resource: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.resource_type}/{self.id}"

    def summary(self) -> str:
        """`MedicationRequest/107641 (0338-1715-40, Patient/S123)`: enough to tell what it was."""
        details = [d for d in (_code_of(self.resource), _subject_of(self.resource)) if d]
        return f"{self.label} ({', '.join(details)})" if details else self.label


@dataclass(frozen=True)
class Due:
    """One resource the task calls for: its type, how a reason names it, and the clinical checks."""

    resource_type: str
    what: str
    check: Callable[[Any], None]


def _code_of(resource: dict[str, Any]) -> str | None:
    concept = resource.get("code") or resource.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    text = concept.get("text")
    return str(text) if text else None


def _subject_of(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    return str(reference) if reference else None


def creatable_types(gateway: Gateway, api_base: str) -> list[str]:
    """The resource types the server's CapabilityStatement says it creates: what an attempt could have written."""
    statement = fetch_json(gateway, f"{api_base}metadata")
    try:
        resources = statement["rest"][0]["resource"]
        return [r["type"] for r in resources if any(i.get("code") == "create" for i in r.get("interaction", []))]
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ReadError(f"GET {api_base}metadata did not return a CapabilityStatement with resources: {exc!r}") from exc


def read_created(gateway: Gateway, api_base: str) -> list[Created]:
    """Every resource the attempt created, oldest first: one `_lastUpdated` search per creatable type."""
    created: list[Created] = []
    for resource_type in creatable_types(gateway, api_base):
        url: str | None = f"{api_base}{resource_type}?_lastUpdated=gt{CREATED_AFTER}&_count=5000&_format=json"
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            bundle = fetch_json(gateway, url)
            try:
                for entry in bundle.get("entry", []):
                    resource = entry["resource"]
                    created.append(Created(resource["resourceType"], str(resource["id"]), resource))
                url = next((link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            except (AttributeError, KeyError, TypeError) as exc:
                raise ReadError(f"GET {url} did not return a Bundle of resources: {exc!r}") from exc
    return sorted(created, key=_creation_order)


def _creation_order(item: Created) -> tuple[str, int, str]:
    meta = item.resource.get("meta")
    updated = meta.get("lastUpdated", "") if isinstance(meta, dict) else ""
    return (str(updated), int(item.id) if item.id.isdigit() else 0, item.id)


def _listing(items: Sequence[Created]) -> str:
    """`A (..)`, `A (..) and B (..)`, `A (..), B (..) and C (..)`."""
    names = [item.summary() for item in items]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def state_rules(created: Sequence[Created]) -> Rules:
    """The corrected rules with "did the agent write?" answered by the server instead of the transcript."""

    def has_post(history: Sequence[Turn]) -> bool:
        return bool(created)

    def evidence(history: Sequence[Turn]) -> str:
        return f"the server holds {_listing(created)}, created by this attempt"

    def no_transcript_posts(history: Sequence[Turn]) -> list[Any]:
        raise AssertionError("the state grader reads orders from the server, never from the transcript")

    return dataclasses.replace(
        CORRECTED, name="state", has_post=has_post, post_evidence=evidence, accepted_posts=no_transcript_posts
    )


def expect_state(created: Sequence[Created], due: Sequence[Due], nothing_due_because: str = "") -> None:
    """Each due resource created exactly once and clinically right; nothing else created.

    Raises ``Incorrect`` naming every problem: what the state lacked, what it held twice, what
    was wrong in a created resource, and what it held in excess.
    """
    if not due:
        if created:
            raise Incorrect(
                f"the server holds {_listing(created)}, created by this attempt, "
                f"but {nothing_due_because}, so nothing was due"
            )
        return
    problems = []
    for item in due:
        found = [c for c in created if c.resource_type == item.resource_type]
        if not found:
            problems.append(f"the server holds no {item.resource_type} created by this attempt; due: {item.what}")
        elif len(found) > 1:
            problems.append(
                f"duplicates: the server holds {len(found)} {item.resource_type}s created by this "
                f"attempt, {_listing(found)}, where one was due: {item.what}"
            )
        else:
            try:
                item.check(found[0].resource)
            except Incorrect as exc:
                problems.append(f"{found[0].summary()} is not {item.what}: {exc}")
    due_types = {item.resource_type for item in due}
    excess = [c for c in created if c.resource_type not in due_types]
    if excess:
        wanted = " and ".join(item.what for item in due)
        problems.append(
            f"the server also holds {_listing(excess)}, created by this attempt, where only {wanted} was due"
        )
    if problems:
        raise Incorrect("; ".join(problems))


def _mrn(task: Task) -> str:
    if task.eval_MRN is None:
        raise Incorrect(f"task {task.id} has no eval_MRN")
    return str(task.eval_MRN)


def _own(created: Sequence[Created]) -> frozenset[str]:
    return frozenset(c.id for c in created if c.resource_type == "Observation")


def _task3(
    task: Task, outcome: Outcome, gateway: Gateway, api_base: str, created: Sequence[Created], rules: Rules
) -> None:
    value = rules.bp_value(task)
    expect_state(
        created,
        [
            Due(
                "Observation",
                f"a blood pressure Observation of {value}",
                lambda p: check_bp_observation(p, task, rules),
            )
        ],
    )


def _task5(
    task: Task, outcome: Outcome, gateway: Gateway, api_base: str, created: Sequence[Created], rules: Rules
) -> None:
    readings = read_observations(gateway, api_base, _mrn(task), "MG", True, _own(created))
    recent = latest(within_24h(readings))
    if recent is None:
        expect_state(created, [], "no magnesium was measured in the last 24 h")
        return
    value = recent.value
    if value > 1.9:
        expect_state(created, [], f"magnesium {value} is not low (above 1.9)")
    else:
        dose, hours = magnesium_tier(value)
        expect_state(
            created,
            [
                Due(
                    "MedicationRequest",
                    f"an IV magnesium order of {dose} g over {hours} h for magnesium {value}",
                    lambda p: check_magnesium_order(p, task, value, rules),
                )
            ],
        )
    expect_answer(parse_answer(outcome.result), [value], or_empty=True)


def _task8(
    task: Task, outcome: Outcome, gateway: Gateway, api_base: str, created: Sequence[Created], rules: Rules
) -> None:
    expect_state(
        created,
        [Due("ServiceRequest", "the orthopedic referral with the SBAR note", lambda p: check_referral(p, task, rules))],
    )


def _task9(
    task: Task, outcome: Outcome, gateway: Gateway, api_base: str, created: Sequence[Created], rules: Rules
) -> None:
    last = latest(read_observations(gateway, api_base, _mrn(task), "K", True, _own(created)))
    value = last.value if last else None
    if value is None or value >= 3.5:
        why = "no potassium value is on file" if value is None else f"potassium {value} is not low (3.5 or above)"
        expect_state(created, [], why)
    else:
        dose = potassium_dose_meq(value)
        expect_state(
            created,
            [
                Due(
                    "MedicationRequest",
                    f"an oral potassium order of {dose:g} mEq for potassium {value}",
                    lambda p: check_potassium_order(p, task, value, rules),
                ),
                Due(
                    "ServiceRequest", "a serum potassium test for 8 am tomorrow", lambda p: check_potassium_lab(p, task)
                ),
            ],
        )
    expect_answer(parse_answer(outcome.result), [value if value is not None else -1], or_empty=True)


def _task10(
    task: Task, outcome: Outcome, gateway: Gateway, api_base: str, created: Sequence[Created], rules: Rules
) -> None:
    last = latest(read_observations(gateway, api_base, _mrn(task), "A1C", True, _own(created)))
    ref = [last.value, last.time_text] if last else [-1]
    if last is None or last.time < A1C_STALE_BEFORE:
        since = "no HbA1c on file" if last is None else f"last HbA1c {last.time_text}"
        expect_state(created, [Due("ServiceRequest", f"an HbA1c order ({since})", lambda p: check_a1c_order(p, task))])
    else:
        expect_state(created, [], f"the last HbA1c ({last.time_text}) is less than a year old")
    expect_answer(parse_answer(outcome.result), ref, or_empty=True)


StateBody = Callable[[Task, Outcome, Gateway, str, Sequence[Created], Rules], None]
STATE_GRADERS: dict[int, StateBody] = {3: _task3, 5: _task5, 8: _task8, 9: _task9, 10: _task10}


def grade_state(task: Task, outcome: Outcome, gateway: Gateway, api_base: str) -> Verdict:
    """The state verdict on a completed attempt; ``gateway`` must carry the attempt's write namespace.

    Write categories are decided from the created resources; read-only categories run the
    corrected grader with "nothing was written" read from the server.
    """
    try:
        created = read_created(gateway, api_base)
        rules = state_rules(created)
        if task.category not in WRITE_CATEGORIES:
            verdict = GRADERS[task.category](task, outcome, gateway, api_base, rules)
            prefix = f"task{task.category}: "
            if verdict.reason and verdict.reason.startswith(prefix):
                return Verdict(verdict.correct, f"task{task.category} (state): {verdict.reason[len(prefix) :]}")
            return verdict
        STATE_GRADERS[task.category](task, outcome, gateway, api_base, created, rules)
    except (Incorrect, ReadError) as exc:
        return Verdict(False, f"task{task.category} (state): {exc}")
    except Exception as exc:  # noqa: BLE001 - as every grader: any exception means incorrect, named
        return Verdict(False, f"task{task.category} (state): grader error {type(exc).__name__}: {exc}")
    return Verdict(True)
