"""What a MedAgentBench task asks, read from the opening user message alone.

The reference agent never sees task ids or categories: like any model it gets the prompt
(function list, context, question). This module recognises the category from facts that both
the official wording and our generated wording state (codes, NDCs, quoted values, MRN/DOB
shapes), so the agent keeps working when the wording changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from medbench.clock import NOW

NDC_IV_MAGNESIUM = "0338-1715-40"
NDC_ORAL_POTASSIUM = "40032-917-01"
SNOMED_ORTHOPEDIC_REFERRAL = "306181000000106"
LOINC_HBA1C_ORDER = "4548-4"
LOINC_SERUM_POTASSIUM = "2823-3"

_LAB_CODES = ("GLU", "A1C", "MG", "K")
_URL = re.compile(r"https?://[^\s\"'<>\\]+")
_MRN = re.compile(r"\bS\d+\b")
_DOB = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b(?!T)")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")
_QUOTED_BP = re.compile(r"[\"“](\d{2,3}/\d{2,3} ?mmHg)[\"”]")
_QUOTED = re.compile(r"[\"“]([^\"”]+)[\"”]")
_AVERAGE = re.compile(r"\b(average|mean)\b", re.IGNORECASE)
_AGE = re.compile(r"\bage\b", re.IGNORECASE)


class ReferenceAgentError(ValueError):
    """The reference agent cannot act on this conversation; the message says what it lacked."""


@dataclass(frozen=True)
class TaskFacts:
    """Everything the reference agent needs from the task text, already interpreted."""

    category: int
    api_base: str
    now: datetime
    question: str
    mrn: str | None = None
    lab_code: str | None = None
    birth_date: str | None = None
    bp_value: str | None = None
    note: str | None = None

    @property
    def now_iso(self) -> str:
        """The clinical now as graders compare it (`2023-11-13T10:15:00+00:00`)."""
        return self.now.isoformat()


def parse_datetime(text: str) -> datetime:
    """Timezone-aware datetime from FHIR/ISO text; a missing offset means UTC (as the data is)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def find_api_base(prompt: str) -> str:
    """The FHIR base URL the prompt tells the model to use, trailing slash included."""
    urls = [m.group().rstrip(".,;:)") for m in _URL.finditer(prompt)]
    for url in urls:
        if url.endswith("/fhir/"):
            return url
    marker = re.search(r"(https?://\S+?/?)\s+as the api_base", prompt)
    if marker:
        url = marker.group(1)
        return url if url.endswith("/") else url + "/"
    raise ReferenceAgentError(
        "no FHIR base URL (a URL ending in /fhir/) in the first user message; "
        "the reference agent needs it to build GET and POST urls"
    )


def split_task_text(prompt: str) -> tuple[str, str]:
    """(context + question, question): the task-specific tail of the prompt.

    Both prompt templates end with `Context: ...` then `Question: ...`; reading only that tail
    keeps words in the function catalog from being mistaken for task facts.
    """
    start = prompt.rfind("Context:")
    task_text = prompt[start:] if start >= 0 else prompt
    q_start = task_text.rfind("Question:")
    question = task_text[q_start + len("Question:") :] if q_start >= 0 else task_text
    return task_text, question.strip()


def _lab_code(task_text: str) -> str | None:
    """The first lab code the context names, quoted ("MG") preferred over a bare word."""
    for pattern in (r'"{}"', r"\b{}\b"):
        for code in _LAB_CODES:
            if re.search(pattern.format(re.escape(code)), task_text):
                return code
    return None


def _now(task_text: str) -> datetime:
    match = _DATETIME.search(task_text)
    return parse_datetime(match.group()) if match else NOW


def read_facts(prompt: str) -> TaskFacts:
    """Classify the task and pull out its arguments; raises ReferenceAgentError if unknown."""
    task_text, question = split_task_text(prompt)
    mrn_match = _MRN.search(question) or _MRN.search(task_text)
    mrn = mrn_match.group() if mrn_match else None
    base = TaskFacts(category=0, api_base=find_api_base(prompt), now=_now(task_text), question=question, mrn=mrn)
    lab = _lab_code(task_text)
    bp = _QUOTED_BP.search(question)
    dob = _DOB.search(question)

    if NDC_IV_MAGNESIUM in task_text:
        return replace(base, category=5, lab_code=lab or "MG")
    if NDC_ORAL_POTASSIUM in task_text:
        return replace(base, category=9, lab_code=lab or "K")
    if SNOMED_ORTHOPEDIC_REFERRAL in task_text:
        quotes = _QUOTED.findall(question)
        if not quotes:
            raise ReferenceAgentError("orthopedic referral task without a quoted note in the question")
        return replace(base, category=8, note=max(quotes, key=len))
    if LOINC_HBA1C_ORDER in task_text:
        return replace(base, category=10, lab_code=lab or "A1C")
    if bp:
        return replace(base, category=3, bp_value=bp.group(1))
    if lab == "GLU":
        return replace(base, category=6 if _AVERAGE.search(task_text) else 7, lab_code=lab)
    if lab == "MG":
        return replace(base, category=4, lab_code=lab)
    if mrn and _AGE.search(question):
        return replace(base, category=2)
    if dob and not mrn:
        return replace(base, category=1, birth_date=dob.group(1))
    raise ReferenceAgentError(
        "task not recognised: expected an NDC (0338-1715-40, 40032-917-01), SNOMED 306181000000106, "
        "LOINC 4548-4, a quoted blood pressure, a lab code (GLU, MG), an MRN with 'age', "
        f"or a name with a date of birth; question was: {question[:200]!r}"
    )
