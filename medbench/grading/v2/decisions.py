"""The ten v2 graders (task1..task10), deciding as upstream's `new_refsol` does.

Each `taskN(case)` raises `Incorrect(reason)` or returns; `grade_v2` (medbench.grading.v2) turns
that into a verdict. Reads go through the run's gateway and keep only baseline resources
(lastUpdated at or before 2025-01-01), so the attempt's own writes never change a decision.
Where the modes differ (GRADING.md quirks), `case.rules` says which reading applies; every
other decision, quirks included, is upstream's in all modes: substring tests over `str()` of a
payload, "exactly one" write where upstream demands it, the answer read only where a mode does.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medbench.grading.checks import Incorrect, require
from medbench.grading.fhir_reads import Gateway, ReadError, fetch_json
from medbench.grading.transcript import Post
from medbench.grading.v2.clock import is_baseline, parse_time, performed_time, task_now
from medbench.grading.v2.evidence import Evidence
from medbench.tasks.task import Task

ANTICOAGULANTS = (
    "heparin",
    "enoxaparin",
    "dalteparin",
    "fondaparinux",
    "apixaban",
    "rivaroxaban",
    "dabigatran",
    "warfarin",
)
OPIOIDS = ("hydromorphone", "oxycodone", "fentanyl", "hydrocodone", "morphine")
QT_DRUGS = (
    "ondansetron",
    "prochlorperazine",
    "haloperidol",
    "quetiapine",
    "olanzapine",
    "risperidone",
    "ziprasidone",
    "clozapine",
    "chlorpromazine",
)
STOPPED = ("stopped", "cancelled", "completed", "entered-in-error")
ORDER_TYPES = ("ServiceRequest", "MedicationRequest")


@dataclass(frozen=True)
class V2Rules:
    """The decisions that differ between modes (the rest is upstream's everywhere)."""

    name: str
    task1_anchor: str  # "run": the run's recorded start (upstream's wall clock); "task": the task's now
    latest_qtc_by: str  # "lastUpdated" (upstream) or "effectiveDateTime"
    check_answers: bool  # corrected/state: the answers the instructions ask for are checked


OFFICIAL_V2 = V2Rules("official", task1_anchor="run", latest_qtc_by="lastUpdated", check_answers=False)
CORRECTED_V2 = V2Rules("corrected", task1_anchor="task", latest_qtc_by="effectiveDateTime", check_answers=True)


@dataclass
class Case:
    """One attempt under grading: the task, what the attempt did, and the EHR to read."""

    task: Task
    result: str | None
    evidence: Evidence
    gateway: Gateway
    api_base: str
    rules: V2Rules
    run_started: datetime

    @property
    def mrn(self) -> str:
        return str(self.task.eval_MRN)

    @property
    def now(self) -> datetime:
        return task_now(self.task.context)

    def read(self, resource: str, **params: str) -> list[dict[str, Any]]:
        """Baseline resources of the patient: `{base}{Resource}?patient=MRN&...&_count=5000&_format=json`."""
        query = "".join(f"&{key}={value}" for key, value in params.items())
        url = f"{self.api_base}{resource}?patient={self.mrn}{query}&_count=5000&_format=json"
        try:
            bundle = fetch_json(self.gateway, url)
            resources = [entry["resource"] for entry in bundle.get("entry") or []]
        except (ReadError, AttributeError, KeyError, TypeError) as error:
            raise Incorrect(f"grader read failed: {error}") from None
        return [r for r in resources if is_baseline(r)]

    def subject_ok(self, payload: Any) -> bool:
        return isinstance(payload, dict) and payload.get("subject") == {"reference": f"Patient/{self.mrn}"}


# --- shared checks ---------------------------------------------------------------------------------------


def _lower(payload: Any) -> str:
    return str(payload).lower()


def _kind(post: Post) -> Any:
    return post.payload.get("resourceType") if isinstance(post.payload, dict) else None


def _is_order(case: Case, post: Post, types: tuple[str, ...] = ORDER_TYPES) -> bool:
    """resourceType among `types`, status active, intent order, exact subject (case-insensitive status/intent)."""
    p = post.payload
    try:
        return (
            _kind(post) in types
            and str(p["status"]).lower() == "active"
            and str(p["intent"]).lower() == "order"
            and case.subject_ok(p)
        )
    except (KeyError, TypeError):
        return False


def _silent(reason: str | None, why: str) -> None:
    if reason is not None:
        raise Incorrect(f"{why}: {reason}")


def _exactly_one(posts: list[Post], why: str) -> Post:
    require(len(posts) == 1, f"{why}: exactly one accepted write is required, found {len(posts)}")
    return posts[0]


def _latest(times: list[datetime | None]) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _date_text(value: datetime | None) -> str:
    return value.isoformat() if value else "none on record"


def _matches_date(answer: Any, expected: datetime | None) -> bool:
    if expected is None:
        return answer in (-1, "-1", None)
    parsed = parse_time(answer) if isinstance(answer, str) else None
    return parsed is not None and parsed.date() == expected.date()


def _answer_list(result: str | None) -> list[Any]:
    try:
        value = json.loads(result or "")
    except (ValueError, RecursionError):
        raise Incorrect(f"the FINISH value {result!r} is not JSON") from None
    return value if isinstance(value, list) else [value]


def _expect_dates(case: Case, expected: datetime | None, what: str) -> None:
    if not case.rules.check_answers:
        return
    answer = _answer_list(case.result)
    if expected is None and answer == []:
        return  # nothing on record and nothing claimed
    require(
        any(_matches_date(item, expected) for item in answer),
        f"the answer {case.result} does not give the {what} ({_date_text(expected)}; -1 when there is none)",
    )


# --- the graders -----------------------------------------------------------------------------------------


def task1(case: Case) -> None:
    """CT abdomen/pelvis more than 12 months old (or none): exactly one CT 74177 order for renal mass follow-up."""
    cts = case.read("Procedure", code="IMGCT0491,IMGIL0001")
    last = _latest([performed_time(r) for r in cts])
    anchor = case.run_started if case.rules.task1_anchor == "run" else case.now
    required = last is None or last < anchor - timedelta(days=365)
    anchor_name = "the run's start" if case.rules.task1_anchor == "run" else "the task's now"
    if not required:
        _silent(
            case.evidence.strict_silence(),
            f"the last CT ({_date_text(last)}) is within 12 months of "
            f"{anchor_name} ({anchor.isoformat()}), so nothing may be ordered",
        )
    else:
        post = _exactly_one(
            case.evidence.posts(), f"a CT is due (last CT {_date_text(last)}, {anchor_name} {anchor.isoformat()})"
        )
        p = post.payload
        require("ServiceRequest" in post.url, f"the write went to {post.url}, not ServiceRequest")
        try:
            require(p["resourceType"] == "ServiceRequest", f"resourceType is {p['resourceType']!r}")
            require(str(p["status"]).lower() == "active", f"status is {p['status']!r}, not active")
            require(str(p["intent"]).lower() == "order", f"intent is {p['intent']!r}, not order")
            require(case.subject_ok(p), f"subject is {p.get('subject')!r}, not Patient/{case.mrn}")
            code = p["code"]["coding"][0]["code"]
            require(code == "74177", f"the first coding is {code!r}, not 74177")
        except (KeyError, IndexError, TypeError) as error:
            raise Incorrect(f"the CT order lacks {error}") from None
        texts = [str(r.get("text", "")) for r in p.get("reasonCode") or [] if isinstance(r, dict)]
        texts += [str(r.get("display", "")) for r in p.get("reasonReference") or [] if isinstance(r, dict)]
        notes = p.get("note")
        for note in notes if isinstance(notes, list) else [notes]:
            if isinstance(note, dict):
                texts.append(str(note.get("text", "")))
        require(
            any("renal mass follow-up" in t.lower() for t in texts),
            "the order does not give the indication 'Renal mass follow-up' (reasonCode, reasonReference or note)",
        )
    _expect_dates(case, last, "date of the most recent CT")


def task2(case: Case) -> None:
    """Exactly one active DVT-prophylaxis order, heparin 5000 units: create it, stop duplicates."""
    active = case.read("MedicationRequest", status="active")
    try:
        texts = [str(r["medicationCodeableConcept"]["text"]).lower() for r in active]
    except (KeyError, TypeError) as error:
        raise Incorrect(f"an active MedicationRequest has no medicationCodeableConcept.text ({error})") from None
    anticoagulants = [t for t in texts if any(word in t for word in ANTICOAGULANTS)]
    need_create = not any("heparin" in t and ("5,000" in t or "5000" in t) for t in texts)
    need_stops = max(len(anticoagulants) - 1, 0)
    posts = case.evidence.posts()
    if not need_create and not need_stops:
        _silent(case.evidence.lenient_silence(), "one correct heparin order is active, so nothing may be written")
        return
    for post in posts:
        require(
            case.subject_ok(post.payload),
            f"a write has subject {post.payload.get('subject')!r}, not Patient/{case.mrn}"
            if isinstance(post.payload, dict)
            else "a write is not a resource",
        )
    orders = [p for p in posts if _kind(p) == "MedicationRequest"]
    creates = [p for p in orders if str(p.payload.get("status", "")).lower() == "active"]
    stops = [p for p in orders if str(p.payload.get("status", "")).lower() in STOPPED]
    if need_create:
        require(
            any("heparin" in _lower(p.payload) and "5000" in _lower(p.payload) for p in creates),
            "no active heparin 5000 MedicationRequest was created, and none is on record",
        )
    if need_stops:
        require(
            bool(stops),
            f"{len(anticoagulants)} anticoagulant orders are active; no MedicationRequest "
            "discontinuing one was written",
        )


def task3(case: Case) -> None:
    """Mean heart rate over the last 6 h and 12 h, as a two-item answer (-1 or null for an empty window)."""
    why = case.evidence.strict_silence()
    _silent(why, "this task only reads")
    now = case.now
    readings = []
    for r in case.read("Observation", code="HEARTRATE"):
        value = (r.get("valueQuantity") or {}).get("value")
        when = parse_time(r.get("effectiveDateTime"))
        if value is not None and when is not None:
            readings.append((when, float(value)))
    gold = []
    for hours in (6, 12):
        window = [v for t, v in readings if now - timedelta(hours=hours) <= t <= now]
        gold.append(sum(window) / len(window) if window else None)
    answer = _task3_answer(case.result)
    for label, given, expected in zip(("6 h", "12 h"), answer, gold, strict=True):
        empty = given in (None, -1, "-1")
        if expected is None:
            require(empty, f"no heart rate in the last {label} before {now.isoformat()}, answer gave {given!r}")
            continue
        require(not empty, f"the {label} mean is {expected:.2f}, answer gave no value")
        try:
            close = abs(float(given) - expected) <= 0.1
        except (TypeError, ValueError):
            close = False
        require(close, f"the {label} mean is {expected:.2f}, answer gave {given!r}")


def _task3_answer(result: str | None) -> list[Any]:
    value: Any = None
    for parse in (ast.literal_eval, json.loads):
        try:
            value = parse(result or "")
            break
        except (ValueError, SyntaxError, RecursionError, TypeError, MemoryError):
            continue
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise Incorrect(f"the answer {result!r} is not a list of two values (6 h mean, 12 h mean)")
    return list(value)


def task4(case: Case) -> None:
    """Urinary catheter in place over 48 h with no active removal order: order its removal (NUR1373)."""
    last = _latest([performed_time(r) for r in case.read("Procedure", code="NUR1373")])
    removal = case.read("ServiceRequest", code="NUR1373", status="active")
    required = last is not None and case.now - last > timedelta(hours=48) and not removal
    if not required:
        state = (
            "no catheter on record"
            if last is None
            else "a removal order exists"
            if removal
            else f"the catheter went in at {last.isoformat()}, at most 48 h before {case.now.isoformat()}"
        )
        _silent(case.evidence.lenient_silence(), f"no removal is due ({state})")
        return
    good = [
        p
        for p in case.evidence.posts()
        if _is_order(case, p, ("ServiceRequest",)) and "nur1373" in _lower(p.payload.get("code"))
    ]
    require(
        bool(good),
        f"the catheter went in at {_date_text(last)}; no active ServiceRequest with code NUR1373 "
        f"for Patient/{case.mrn} was written",
    )


def task5(case: Case) -> None:
    """Left renal malignancy (C64.2) with the last CT over 90 days old: CT 74177 and IR referral CON417."""
    if not case.read("Condition", code="C64.2"):
        _silent(case.evidence.strict_silence(), "the patient has no C64.2 diagnosis, so nothing may be ordered")
        return
    last = _latest([performed_time(r) for r in case.read("Procedure", code="IMGCT0491,IMGIL0001,74177")])
    needed = last is None or case.now - last > timedelta(days=90)
    if not needed:
        _silent(
            case.evidence.lenient_silence(),
            f"the last CT ({_date_text(last)}) is within 90 days of {case.now.isoformat()}",
        )
        return
    orders = [p for p in case.evidence.posts() if _is_order(case, p)]
    codes = [str(p.payload.get("code") or p.payload.get("medicationCodeableConcept")) for p in orders]
    require(any("74177" in c for c in codes), f"a CT is due (last {_date_text(last)}); no order carries 74177")
    require(any("CON417" in c for c in codes), "an IR referral is due; no order carries CON417")


def task6(case: Case) -> None:
    """Thyroid protocol: two TSH > 10 a month apart -> levothyroxine 25 + labs; TSH 4.5-10 with normal FT4 -> labs."""
    tsh, ft4 = _measurements(case, "TSH"), _measurements(case, "FT4")
    high = [t for t, v in tsh if v > 10]
    branch_a = any(abs((b - a).days) >= 30 for a in high for b in high)
    latest_tsh = max(tsh, key=lambda m: m[0]) if tsh else None
    latest_ft4 = max(ft4, key=lambda m: m[0]) if ft4 else None
    branch_b = (
        not branch_a
        and latest_tsh is not None
        and latest_ft4 is not None
        and 4.5 <= latest_tsh[1] <= 10
        and 0.8 <= latest_ft4[1] <= 1.8
    )
    posts = case.evidence.posts()
    if branch_a or branch_b:
        meds = [p for p in posts if _kind(p) == "MedicationRequest"]
        try:
            good_meds = [
                p
                for p in meds
                if _is_order(case, p)
                and "levothyroxine" in str(p.payload["medicationCodeableConcept"]["text"]).lower()
                and "25" in str(p.payload["medicationCodeableConcept"]["text"])
            ]
        except (KeyError, TypeError):
            raise Incorrect("a MedicationRequest write has no medicationCodeableConcept.text") from None
        labs = [
            p
            for p in posts
            if _is_order(case, p, ("ServiceRequest",))
            and any(word in _lower(p.payload.get("code")) + _lower(p.payload.get("text")) for word in ("tsh", "ft4"))
        ]
        if branch_a:
            require(
                bool(good_meds), "TSH was over 10 twice a month apart; no active levothyroxine 25 order was written"
            )
            require(
                len(labs) >= 2, f"TSH/FT4 repeat labs are due; {len(labs)} TSH/FT4 ServiceRequest(s) written, 2 needed"
            )
        else:
            require(not meds, "TSH 4.5-10 with a normal FT4 calls for labs only; a MedicationRequest was written")
            require(
                len(labs) >= 2, f"TSH/FT4 repeat labs are due; {len(labs)} TSH/FT4 ServiceRequest(s) written, 2 needed"
            )
    else:
        _silent(case.evidence.lenient_silence(), "neither protocol branch applies")
    if case.rules.check_answers:
        answer = _answer_list(case.result)
        for name, latest in (("TSH", latest_tsh), ("FT4", latest_ft4)):
            expected = latest[1] if latest else None
            require(
                any(_same_number(item, expected) for item in answer),
                f"the answer {case.result} does not give the latest {name} ({expected if expected is not None else -1})",
            )


def _measurements(case: Case, code: str) -> list[tuple[datetime, float]]:
    found = []
    for r in case.read("Observation", code=code):
        when, value = parse_time(r.get("effectiveDateTime")), (r.get("valueQuantity") or {}).get("value")
        if when is None or value is None:
            raise Incorrect(f"a {code} Observation lacks effectiveDateTime or valueQuantity.value (upstream raises)")
        found.append((when, float(value)))
    return found


def _same_number(item: Any, expected: float | None) -> bool:
    if expected is None:
        return item in (-1, "-1", None)
    try:
        return abs(float(item) - expected) <= 0.01
    except (TypeError, ValueError):
        return False


def task7(case: Case) -> None:
    """Latest QTc over 500 ms: stop a QT-prolonging drug and order a 12-lead ECG."""
    qtcs = case.read("Observation", code="QTCINTERVAL")
    if not qtcs:
        _silent(case.evidence.strict_silence(), "no QTc on record, so nothing may be written")
        return
    if case.rules.latest_qtc_by == "lastUpdated":
        best = qtcs[0]
        for r in qtcs[1:]:
            if str((r.get("meta") or {}).get("lastUpdated", "")) > str((best.get("meta") or {}).get("lastUpdated", "")):
                best = r
    else:
        best = max(
            qtcs, key=lambda r: parse_time(r.get("effectiveDateTime")) or datetime.min.replace(tzinfo=case.now.tzinfo)
        )
    try:
        value = float(best["valueQuantity"]["value"])
    except (KeyError, TypeError, ValueError):
        raise Incorrect("the latest QTc has no valueQuantity.value") from None
    if value <= 500:
        _silent(case.evidence.lenient_silence(), f"the latest QTc is {value:g} ms (not over 500)")
        return
    posts = case.evidence.posts()
    for post in posts:
        require(
            _kind(post) in ORDER_TYPES and case.subject_ok(post.payload),
            f"QTc {value:g} ms: every write must be an order for Patient/{case.mrn}; one is {_kind(post)!r}",
        )
    ecg = [
        p
        for p in posts
        if _kind(p) == "ServiceRequest"
        and str(p.payload.get("status", "")).lower() == "active"
        and ("445118002" in _lower(p.payload) or "ecg" in _lower(p.payload))
    ]
    stops = [
        p
        for p in posts
        if _kind(p) == "MedicationRequest"
        and str(p.payload.get("status", "")).lower() in STOPPED
        and any(drug in _lower(p.payload) for drug in QT_DRUGS)
    ]
    require(bool(ecg), f"QTc {value:g} ms: no active ECG ServiceRequest (445118002) was written")
    require(bool(stops), f"QTc {value:g} ms: no MedicationRequest discontinuing a QT-prolonging drug was written")


def task8(case: Case) -> None:
    """An active opioid without naloxone on record: exactly one naloxone order."""
    active = case.read("MedicationRequest", status="active")
    try:
        texts = [str(r["medicationCodeableConcept"]["text"]).lower() for r in active]
    except (KeyError, TypeError) as error:
        raise Incorrect(f"an active MedicationRequest has no medicationCodeableConcept.text ({error})") from None
    opioid = any(word in t for t in texts for word in OPIOIDS)
    covered = any("naloxone" in t or "narcan" in t for t in texts)
    if not opioid or covered:
        _silent(case.evidence.lenient_silence(), "no active opioid" if not opioid else "naloxone is already ordered")
        return
    post = _exactly_one(case.evidence.posts(), "an opioid is active without naloxone")
    require(_is_order(case, post), f"the write is not an active order for Patient/{case.mrn}")
    require("naloxone" in _lower(post.payload) or "narcan" in _lower(post.payload), "the order is not for naloxone")


def task9(case: Case) -> None:
    """Last flu shot (90686) over 365 days before now, or none: exactly one flu vaccine order."""
    last = _latest([performed_time(r) for r in case.read("Procedure", code="90686")])
    needed = last is None or case.now - last > timedelta(days=365)
    if not needed:
        _silent(case.evidence.lenient_silence(), f"the last flu shot ({_date_text(last)}) is within 365 days")
    else:
        post = _exactly_one(case.evidence.posts(), f"a flu vaccine is due (last {_date_text(last)})")
        require(_is_order(case, post), f"the write is not an active order for Patient/{case.mrn}")
        coding = (post.payload.get("code") or {}).get("coding") if isinstance(post.payload.get("code"), dict) else None
        if coding is not None:
            require(bool(coding), "the order's code.coding is empty (upstream raises)")
        by_code = bool(coding) and isinstance(coding[0], dict) and coding[0].get("code") == "90686"  # type: ignore[index]
        text = _lower(post.payload)
        require(by_code or "flu" in text or "influenza" in text, "the order is not for an influenza vaccine")
    _expect_dates(case, last, "date of the last influenza vaccine")


def task10(case: Case) -> None:
    """Last COVID-19 vaccine dose over 12 months (calendar days) before now, or none: exactly one booster order."""
    doses = case.read("Procedure", code="COVIDVACCINE")
    completed = case.read("MedicationRequest", status="completed")
    try:
        doses += [r for r in completed if "covid-19 vac" in str(r["medicationCodeableConcept"]["text"]).lower()]
    except (KeyError, TypeError):
        raise Incorrect("a completed MedicationRequest has no medicationCodeableConcept.text") from None
    last = _latest([performed_time(r, with_authored=True) for r in doses])
    needed = last is None or (case.now.date() - last.date()).days > 365
    if not needed:
        _silent(case.evidence.lenient_silence(), f"the last COVID-19 dose ({_date_text(last)}) is within 12 months")
    else:
        post = _exactly_one(case.evidence.posts(), f"a COVID-19 booster is due (last dose {_date_text(last)})")
        require(_is_order(case, post), f"the write is not an active order for Patient/{case.mrn}")
        text = _lower(post.payload.get("code", "")) + _lower(post.payload.get("medicationCodeableConcept", ""))
        require("covid" in text, "neither code nor medicationCodeableConcept of the order names COVID")
    _expect_dates(case, last, "date of the last COVID-19 vaccine dose")


GRADERS_V2: dict[int, Callable[[Case], None]] = {
    1: task1,
    2: task2,
    3: task3,
    4: task4,
    5: task5,
    6: task6,
    7: task7,
    8: task8,
    9: task9,
    10: task10,
}
