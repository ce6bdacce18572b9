"""The opening prompt is byte-for-byte what the upstream harness sends for official tasks."""

import json

import pytest

from helpers.official import OFFICIAL_DIR, require_official
from medbench.agent.prompt import build_prompt
from medbench.tasks.task import Task, TaskSet

BASE = "http://localhost:8080/fhir/"


@pytest.fixture(scope="module")
def official() -> TaskSet:
    if not OFFICIAL_DIR.is_dir():
        require_official()
    records = json.loads((OFFICIAL_DIR / "test_data_v2.json").read_text(encoding="utf-8"))
    tasks = tuple(
        Task(
            id=r["id"],
            category=int(r["id"].split("_")[0][4:]),
            instruction=r["instruction"],
            context=r["context"],
            eval_MRN=r.get("eval_MRN"),
            sol=r.get("sol"),
        )
        for r in records
    )
    return TaskSet(
        name="official",
        tasks=tasks,
        prompt_template=(OFFICIAL_DIR / "prompt_template.txt").read_text(encoding="utf-8"),
        functions=json.loads((OFFICIAL_DIR / "funcs_v1.json").read_text(encoding="utf-8")),
        flavour="official",
    )


def upstream_prompt(template: str, functions: list, context: str, question: str, api_base: str) -> str:
    """Independent rendering by plain substitution: placeholders filled left to right, values never re-read."""
    values = {
        "{api_base}": api_base,
        "{functions}": json.dumps(functions),
        "{context}": context,
        "{question}": question,
    }
    out, i = [], 0
    while i < len(template):
        for placeholder, value in values.items():
            if template.startswith(placeholder, i):
                out.append(value)
                i += len(placeholder)
                break
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


def test_every_official_prompt_equals_upstream_rendering(official):
    for task in official.tasks:
        expected = upstream_prompt(official.prompt_template, official.functions, task.context, task.instruction, BASE)
        assert build_prompt(official, task, BASE) == expected, task.id


def test_prompt_states_base_url_with_trailing_slash(official):
    prompt = build_prompt(official, official.by_id("task1_1"), BASE)
    assert "Note that you should use http://localhost:8080/fhir/ as the api_base." in prompt


def test_function_names_keep_their_literal_api_base_placeholder(official):
    prompt = build_prompt(official, official.by_id("task1_1"), BASE)
    assert '"name": "GET {api_base}/Condition"' in prompt


def test_functions_use_json_dumps_defaults_with_ascii_escapes(official):
    prompt = build_prompt(official, official.by_id("task1_1"), BASE)
    assert json.dumps(official.functions) in prompt
    assert '", "description": "' in prompt
    assert "\\u2019" in prompt and "\u2019" not in prompt.split("Context:")[0]


def test_prompt_ends_with_the_question_and_no_newline(official):
    task = official.by_id("task3_1")
    prompt = build_prompt(official, task, BASE)
    assert prompt.endswith(f"Context: {task.context}\nQuestion: {task.instruction}")


def test_unicode_in_instruction_is_kept_verbatim(official):
    task = official.by_id("task1_1")
    assert "What’s the MRN" in task.instruction
    assert "What’s the MRN" in build_prompt(official, task, BASE)


def test_display_base_is_what_the_prompt_shows(official):
    prompt = build_prompt(official, official.by_id("task1_1"), "http://fhir.example.org/r4/")
    assert "use http://fhir.example.org/r4/ as the api_base" in prompt
    assert "localhost" not in prompt
