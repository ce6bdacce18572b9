"""The MedAgentBench v2 tools: the 11 function tools of the upstream v2 agent, by their names.

Upstream builds each tool from a pydantic model and sends `openai.pydantic_function_tool(...)`,
strict mode included (every property required, nullable ones as `anyOf [..., null]`, no
additional properties). We do the same with our own descriptions (the facts, in our words:
shared/medagentbench_v2/TOOLS.md), over Chat Completions. Arguments are validated as upstream
validates them: pydantic's lax mode, unknown keys dropped except at the top level of the three
`extra="forbid"` search models, and nullable fields with no default required.

A FHIR tool's request is `GET|POST <base><Resource>` with upstream's query: the model's fields
in order with null fields left out, then the fixed extras (`_sort`, `_count`, `_format`). A
create sends `model_dump(exclude_none=True)` of the validated arguments (so `1` goes out as
`1.0`), as upstream does. What the model is shown of a FHIR answer is `str()` of the parsed
JSON (a Python repr), upstream's rendering.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import openai
from pydantic import BaseModel, ConfigDict, Field

# --- the argument models (names as upstream's, descriptions ours) ---------------------------------------


class PatientSearchParams(BaseModel):
    birthdate: str | None = Field(description="Date of birth as YYYY-MM-DD.")
    family: str | None = Field(description="Family (last) name.")
    given: str | None = Field(description="Given name(s); a middle name may be included.")
    identifier: str | None = Field(description="The patient's identifier (MRN).")


class VitalsSearchParams(BaseModel):
    category: str = Field(description="Observation category; use 'vital-signs'.")
    date: str | None = Field(description="When the observation was taken (FHIR date search value).")
    patient: str = Field(description="The patient: an id such as S1234567 or a reference Patient/S1234567.")


class ObservationSearchParams(BaseModel):
    code: str = Field(description="The lab's short code as the chart names it (e.g. K, A1C), not a LOINC code.")
    patient: str = Field(description="The patient's FHIR id.")


class ObservationSearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    search_params: ObservationSearchParams
    explanation: str = Field(description="Why you are calling this tool (not sent to the EHR).")


class MedicationRequestSearchParams(BaseModel):
    category: str | None = Field(
        description="Limit to one category: Inpatient, Outpatient, Community or Discharge; null searches all."
    )
    date: str | None = Field(description="Administration date (FHIR date search value) or null.")
    patient: str = Field(description="The patient's FHIR id.")


class Coding(BaseModel):
    system: str = Field(description="Code system URI.")
    code: str = Field(description="The code.")
    display: str = Field(description="Human-readable name of the code.")


class MedicationConcept(BaseModel):
    coding: list[Coding] = Field(description="Codings of the medication; NDC system http://hl7.org/fhir/sid/ndc.")
    text: str = Field(description="The medication's name as ordered.")


class Quantity(BaseModel):
    value: float
    unit: str


class DoseAndRate(BaseModel):
    doseQuantity: Quantity = Field(description="Dose amount (unit e.g. g, mg, mcg).")
    rateQuantity: Quantity = Field(description="Rate (unit e.g. h).")


class DosageInstruction(BaseModel):
    route: str = Field(description="Route of administration, as text (e.g. IV, PO).")
    doseAndRate: list[DoseAndRate]


class Reference(BaseModel):
    reference: str = Field(description="Patient/<patient id>.")


class MedicationRequestCreateParams(BaseModel):
    resourceType: str = Field(description="Always MedicationRequest.")
    medicationCodeableConcept: MedicationConcept
    authoredOn: str = Field(description="When the order was written (ISO date-time).")
    dosageInstruction: list[DosageInstruction]
    status: str = Field(description="Order status, e.g. active (or stopped to discontinue).")
    intent: str = Field(description="Use order.")
    subject: Reference


class ServiceCode(BaseModel):
    coding: list[Coding] = Field(description="Codings of the service; e.g. LOINC http://loinc.org, or CPT.")


class Note(BaseModel):
    text: str = Field(description="Free-text note on the order.")


class ServiceRequestCreateParams(BaseModel):
    resourceType: str = Field(description="Always ServiceRequest.")
    code: ServiceCode
    authoredOn: str = Field(description="When the order was signed (ISO date-time).")
    status: str = Field(description="Use active.")
    intent: str = Field(description="Use order.")
    priority: str = Field(description="Order priority, e.g. stat or routine.")
    subject: Reference
    note: Note
    occurrenceDateTime: str = Field(description="When the service should be done (ISO date-time).")


class CategoryCoding(BaseModel):
    coding: list[Coding] = Field(
        description="Use system http://hl7.org/fhir/observation-category, code vital-signs, display Vital Signs."
    )


class CodeText(BaseModel):
    text: str = Field(description="What is measured (flowsheet id or LOINC mapping).")


class VitalsCreateParams(BaseModel):
    resourceType: str = Field(description="Always Observation.")
    category: list[CategoryCoding]
    code: CodeText
    effectiveDateTime: str = Field(description="When it was measured (ISO date-time).")
    status: str = Field(description="Only final is supported.")
    valueString: str = Field(description="The measured value.")
    subject: Reference


class ProcedureSearchParams(BaseModel):
    code: str | None = Field(default=None, description="CPT or local procedure code(s), comma-separated for any of.")
    date: str = Field(description="Date or period in FHIR search form, e.g. ge2023-01-01.")
    patient: str = Field(description="The patient's FHIR id.")


class ProcedureSearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    search_params: ProcedureSearchParams
    explanation: str = Field(description="Why you are calling this tool (not sent to the EHR).")


class ConditionSearchParams(BaseModel):
    code: str | None = Field(description="ICD-10 code, or null for every problem.")
    patient: str = Field(description="The patient's FHIR id.")


class ConditionSearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    search_params: ConditionSearchParams
    explanation: str = Field(description="Why you are calling this tool (not sent to the EHR).")


class CalculatorParams(BaseModel):
    expression: str = Field(
        description=(
            "One single-line Python expression: arithmetic, math.*, the datetime module, Decimal and sum are available "
            "without imports. No statements, assignments, imports or semicolons. Example: "
            "(datetime.date(2023, 11, 7) - datetime.date(2023, 1, 2)).days"
        )
    )


class FinishParams(BaseModel):
    value: list[str | int | float | None] = Field(
        description="The answer value(s), each with its proper JSON type; [-1] (a number) when there is none."
    )


# --- the tools ------------------------------------------------------------------------------------------

SEARCH, CREATE, CALCULATE, FINISH = "search", "create", "calculate", "finish"


@dataclass(frozen=True)
class V2Tool:
    """One tool: its name and schema, and what a validated call turns into."""

    name: str
    description: str
    arguments: type[BaseModel]
    kind: str
    resource: str | None = None
    # The search parameters sent (in order) from validated arguments, and the fixed extras after them.
    query: Callable[[BaseModel], dict[str, Any]] | None = None
    extras: tuple[tuple[str, str], ...] = ()

    def spec(self) -> dict[str, Any]:
        """The Chat Completions `tools` entry, built as upstream builds it (strict)."""
        spec: dict[str, Any] = dict(
            openai.pydantic_function_tool(self.arguments, name=self.name, description=self.description)
        )
        return spec

    @property
    def method(self) -> str | None:
        return {SEARCH: "GET", CREATE: "POST"}.get(self.kind)

    def url(self, api_base: str, arguments: BaseModel) -> str:
        """The request URL of a FHIR tool call (`api_base` ends in '/')."""
        assert self.resource is not None, self.name
        if self.kind == CREATE:
            return api_base + self.resource
        assert self.query is not None
        pairs = [(k, str(v)) for k, v in self.query(arguments).items() if v is not None] + list(self.extras)
        query = urlencode(pairs, quote_via=quote, safe="")
        return f"{api_base}{self.resource}?{query}" if query else f"{api_base}{self.resource}"


def _top(arguments: BaseModel) -> dict[str, Any]:
    return arguments.model_dump(exclude_none=True)


def _nested(arguments: BaseModel) -> dict[str, Any]:
    params: BaseModel = arguments.search_params  # type: ignore[attr-defined]
    return params.model_dump(exclude_none=True)


_COUNT = ("_count", "200")
_JSON = ("_format", "json")
_SORT = ("_sort", "-date")

TOOLS: tuple[V2Tool, ...] = (
    V2Tool("patient_search", "Find a patient in the EHR.", PatientSearchParams, SEARCH, "Patient", _top),
    V2Tool(
        "fhir_vitals_search",
        "Observation search for vital signs and other flowsheet rows recorded for a patient, across encounters.",
        VitalsSearchParams,
        SEARCH,
        "Observation",
        _top,
        (_JSON,),
    ),
    V2Tool(
        "fhir_observation_search",
        "Observation search for a patient's lab results (component level).",
        ObservationSearchArgs,
        SEARCH,
        "Observation",
        _nested,
        (_SORT, _COUNT, _JSON),
    ),
    V2Tool(
        "fhir_medication_request_search",
        "MedicationRequest search: a patient's signed medication orders, all categories unless one is given.",
        MedicationRequestSearchParams,
        SEARCH,
        "MedicationRequest",
        _top,
        (_COUNT, _JSON),
    ),
    V2Tool(
        "fhir_medication_request_create",
        "Place a medication order for a patient.",
        MedicationRequestCreateParams,
        CREATE,
        "MedicationRequest",
    ),
    V2Tool(
        "fhir_service_request_create",
        "ServiceRequest create: place an order (labs, imaging, referrals, nursing orders) for a patient.",
        ServiceRequestCreateParams,
        CREATE,
        "ServiceRequest",
    ),
    V2Tool(
        "fhir_vitals_create",
        "Observation create: file a vital sign or another flowsheet value for a patient.",
        VitalsCreateParams,
        CREATE,
        "Observation",
    ),
    V2Tool(
        "fhir_procedure_search",
        "Procedure search: completed procedures performed on a patient (imaging, vaccines, nursing procedures).",
        ProcedureSearchArgs,
        SEARCH,
        "Procedure",
        _nested,
        (_SORT, _COUNT),
    ),
    V2Tool(
        "fhir_condition_search",
        "Condition search: a patient's reconciled, confirmed problems (problem list) across encounters.",
        ConditionSearchArgs,
        SEARCH,
        "Condition",
        _nested,
        (_COUNT, _JSON),
    ),
    V2Tool(
        "calculator", "Evaluate one arithmetic or date expression and return its value.", CalculatorParams, CALCULATE
    ),
    V2Tool("finish", "End the task with the final answer, each value in its proper type.", FinishParams, FINISH),
)
TOOL_NAMES = tuple(tool.name for tool in TOOLS)
CREATE_TOOLS = frozenset(tool.name for tool in TOOLS if tool.kind == CREATE)


def tool_named(name: str) -> V2Tool | None:
    for tool in TOOLS:
        if tool.name == name:
            return tool
    return None


@functools.lru_cache(maxsize=1)
def tool_specs() -> tuple[dict[str, Any], ...]:
    """The 11 `tools` entries, in upstream's registration order."""
    return tuple(tool.spec() for tool in TOOLS)


def is_v2_toolset(tools: list[dict[str, Any]]) -> bool:
    """Whether a request's `tools` are v2's (the built-in models answer v2 differently)."""
    names = {str((t.get("function") or {}).get("name")) for t in tools if isinstance(t, dict)}
    return {"patient_search", "fhir_procedure_search", "fhir_condition_search"} <= names


def user_message(instruction: str, context: str) -> str:
    """Upstream's opening user turn, byte for byte."""
    text = f"<instruction>\n{instruction}\n</instruction>\n"
    if context:
        text += f"<context>\n{context}\n</context>\n"
    return text


def shown_result(parsed: Any) -> str:
    """What the model is shown of a tool's result: `str()` of it, as upstream."""
    return str(parsed)
