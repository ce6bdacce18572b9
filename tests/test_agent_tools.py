"""Tools mode: function catalogs become OpenAI tools with valid, stable names and valid JSON Schemas."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from helpers.official import OFFICIAL_DIR, require_official
from medbench.agent.tools import (
    NAME_PATTERN,
    CatalogError,
    build_tools,
    search_url,
    tools_prompt,
)
from medbench.tasks.generated import generated_presentation
from medbench.tasks.task import Task

OFFICIAL_FUNCS = OFFICIAL_DIR / "funcs_v1.json"
BASE = "http://localhost:8080/fhir/"

# Both catalogs give the same tool names (derived from method, resource and required parameters).
EXPECTED_NAMES = {
    "search_patients",
    "search_observations_by_code",
    "search_observations_by_category",
    "create_observation",
    "search_conditions",
    "search_medication_requests",
    "create_medication_request",
    "search_procedures",
    "create_service_request",
    "create_resource",
    "get_next_page",
    "finish",
}


def generated_catalog() -> list[dict]:
    return generated_presentation().functions


def official_catalog() -> list[dict]:
    require_official(OFFICIAL_FUNCS)
    return json.loads(OFFICIAL_FUNCS.read_text(encoding="utf-8"))


CATALOGS = {"generated": generated_catalog, "official": official_catalog}


@pytest.fixture(params=sorted(CATALOGS))
def catalog(request: pytest.FixtureRequest) -> list[dict]:
    return CATALOGS[request.param]()


def test_every_tool_of_both_catalogs_has_a_valid_unique_name(catalog):
    names = build_tools(catalog).names
    assert all(NAME_PATTERN.match(name) for name in names), names
    assert len(names) == len(set(names)) == len(catalog) + 3
    assert set(names) == EXPECTED_NAMES


@pytest.mark.parametrize("validator", [Draft202012Validator, Draft7Validator], ids=["draft2020-12", "draft7"])
def test_every_tool_schema_of_both_catalogs_is_a_valid_json_schema(catalog, validator):
    for tool in build_tools(catalog).tools:
        validator.check_schema(tool.parameters)
        validator.check_schema(tool.argument_schema)
        assert tool.parameters["type"] == "object"


def test_every_tool_spec_is_an_openai_function_tool(catalog):
    for spec in build_tools(catalog).specs():
        assert set(spec) == {"type", "function"} and spec["type"] == "function"
        assert set(spec["function"]) == {"name", "description", "parameters"}
        assert spec["function"]["description"], spec["function"]["name"]


def test_catalog_entries_keep_their_description_parameters_and_required_list(catalog):
    tools = build_tools(catalog)
    for function, tool in zip(catalog, tools.tools[: len(catalog)], strict=True):
        assert tool.source == function["name"]
        assert tool.description == function["description"]
        assert tool.parameters["properties"] == function["parameters"]["properties"]
        assert tool.parameters.get("required", []) == function["parameters"].get("required", [])


def test_names_are_stable_and_follow_the_catalog_order():
    generated = build_tools(generated_catalog()).names
    assert generated == [
        "search_patients",
        "search_observations_by_code",
        "search_observations_by_category",
        "create_observation",
        "search_conditions",
        "search_medication_requests",
        "create_medication_request",
        "search_procedures",
        "create_service_request",
        "create_resource",
        "get_next_page",
        "finish",
    ]
    assert build_tools(generated_catalog()).names == generated


def test_two_searches_of_one_resource_are_named_by_the_required_parameter_only_each_has():
    tools = build_tools(official_catalog())
    labs, vitals = tools.get("search_observations_by_code"), tools.get("search_observations_by_category")
    assert "Labs" in labs.description and "Vitals" in vitals.description


def test_searches_that_require_the_same_parameters_are_numbered():
    same = {"type": "object", "properties": {"patient": {"type": "string"}}, "required": ["patient"]}
    catalog = [
        {"name": "GET [base]Condition", "description": "a", "parameters": same},
        {"name": "GET [base]Condition", "description": "b", "parameters": same},
    ]
    assert build_tools(catalog).names[:2] == ["search_conditions_1", "search_conditions_2"]


def test_an_enum_in_the_catalog_is_kept_and_enforced():
    catalog = [
        {
            "name": "GET {api_base}/Condition",
            "description": "Problems",
            "parameters": {
                "type": "object",
                "required": ["patient"],
                "properties": {
                    "patient": {"type": "string"},
                    "category": {"type": "string", "enum": ["problem-list-item"]},
                },
            },
        }
    ]
    tool = build_tools(catalog).get("search_conditions")
    assert tool.parameters["properties"]["category"]["enum"] == ["problem-list-item"]
    assert tool.argument_problems({"patient": "S1", "category": "problem-list-item"}) == []
    assert tool.argument_problems({"patient": "S1", "category": "encounter-diagnosis"}) == [
        "category: 'encounter-diagnosis' is not one of ['problem-list-item']"
    ]


def test_an_entry_that_is_not_get_or_post_of_a_url_is_refused():
    with pytest.raises(CatalogError, match="DELETE"):
        build_tools([{"name": "DELETE [base]Patient", "description": "", "parameters": {}}])


def test_search_arguments_need_the_required_parameters_with_their_types():
    tool = build_tools(generated_catalog()).get("search_observations_by_code")
    assert tool.argument_problems({"patient": "S1", "code": "MG"}) == []
    assert tool.argument_problems({"patient": "S1"}) == ["'code' is a required property"]
    assert tool.argument_problems({"patient": 7, "code": "MG"}) == ["patient: 7 is not of type 'string'"]
    assert tool.argument_problems(["S1", "MG"]) == ["['S1', 'MG'] is not of type 'object'"]


def test_searches_take_further_fhir_search_parameters_as_strings_or_numbers():
    tool = build_tools(generated_catalog()).get("search_patients")
    assert tool.argument_problems({"birthdate": "1990-01-01", "_count": 5000, "_sort": "-birthdate"}) == []
    assert tool.argument_problems({"_count": {"value": 5}}) == [
        "_count: {'value': 5} is not of type 'string', 'number'"
    ]


def test_create_arguments_are_checked_at_the_catalogs_parameter_level_not_inside_the_resource():
    """The official catalog declares route an object, the official grader wants the string "IV":
    nested shapes are shown to the model but not enforced, as in text mode."""
    tool = build_tools(official_catalog()).get("create_medication_request")
    assert tool.parameters["properties"]["dosageInstruction"]["items"]["properties"]["route"]["type"] == "object"
    order = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"coding": []},
        "authoredOn": "2023-11-13T10:15:00+00:00",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/S1"},
        "dosageInstruction": [{"route": "IV"}],
    }
    assert tool.argument_problems(order) == []
    assert tool.argument_problems({**order, "dosageInstruction": {"route": "IV"}}) == [
        "dosageInstruction: {'route': 'IV'} is not of type 'array'"
    ]
    missing = {key: value for key, value in order.items() if key != "subject"}
    assert tool.argument_problems(missing) == ["'subject' is a required property"]


def test_finish_takes_a_list_of_answers():
    tool = build_tools(generated_catalog()).get("finish")
    assert tool.argument_problems({"answers": []}) == []
    assert tool.argument_problems({"answers": ["S1", 2.5]}) == []
    assert tool.argument_problems({"answers": "I cannot complete this task."}) == [
        "answers: 'I cannot complete this task.' is not of type 'array'"
    ]
    assert tool.argument_problems({}) == ["'answers' is a required property"]


def test_create_resource_needs_a_resource_type_and_a_resource_object():
    tool = build_tools(generated_catalog()).get("create_resource")
    assert tool.argument_problems({"resource_type": "AllergyIntolerance", "resource": {}}) == []
    assert tool.argument_problems({"resource_type": "../Patient", "resource": {}}) == [
        "resource_type: '../Patient' does not match '^[A-Z][A-Za-z]{1,63}$'"
    ]


def test_search_url_is_the_get_a_text_protocol_agent_would_send():
    assert search_url(BASE, "Observation", {"patient": "S1", "code": "MG", "_count": 5000}) == (
        f"{BASE}Observation?patient=S1&code=MG&_count=5000&_format=json"
    )
    assert search_url(BASE, "Observation", {"date": "ge2023-11-12T10:15:00+00:00"}) == (
        f"{BASE}Observation?date=ge2023-11-12T10:15:00%2B00:00&_format=json"
    )
    assert search_url(BASE, "Patient", {"name": "Zoë Ng", "active": True}) == (
        f"{BASE}Patient?name=Zo%C3%AB%20Ng&active=true&_format=json"
    )
    assert search_url(BASE, "Patient", {}) == f"{BASE}Patient?_format=json"


def test_tools_prompt_holds_the_base_url_context_and_question_and_no_text_protocol_actions():
    task = Task(id="task1_1", category=1, instruction="What is the MRN of Zoë?", context="It is 2023-11-13.")
    prompt = tools_prompt(task, BASE)
    assert f"base URL is {BASE}" in prompt
    assert prompt.endswith("Context: It is 2023-11-13.\nQuestion: What is the MRN of Zoë?")
    assert "FINISH(" not in prompt and "GET " not in prompt and "finish" in prompt


def test_the_tools_command_prints_the_schemas_the_endpoint_receives(capsys):
    from medbench.agent.__main__ import main

    assert main(["tools"]) == 0
    assert json.loads(capsys.readouterr().out) == build_tools(generated_catalog()).specs()
    official_catalog()
    assert main(["tools", "--tasks", "official", "--official-dir", str(OFFICIAL_DIR), "--names"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["search_conditions", "GET"] and rows[-1] == ["finish", "FINISH"] and len(rows) == 12


def test_the_tools_command_prints_a_tasks_tools_mode_prompt(capsys):
    from medbench.agent.__main__ import main

    official_catalog()
    assert main(["tools", "--tasks", "official", "--official-dir", str(OFFICIAL_DIR), "--prompt", "task2_1"]) == 0
    assert capsys.readouterr().out.startswith("You are assisting clinicians")
    assert main(["tools", "--tasks", "official", "--official-dir", str(OFFICIAL_DIR), "--prompt", "task99_1"]) == 2
