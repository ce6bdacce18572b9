"""The reference agent recognises every task from its wording: official and generated alike.

It never sees task ids, so these tests build the prompts the agent loop would send (official
template and task file from ../shared/medagentbench; our templates from medbench/data/) and check the
category and arguments it reads against the id and the task record.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers.official import OFFICIAL_DIR, require_official
from medbench.models.builtin.reference_facts import read_facts

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = OFFICIAL_DIR
BASE = "http://localhost:8080/fhir/"
NOW = "2023-11-13T10:15:00+00:00"


def official_prompts() -> list[tuple[str, str, str | None]]:
    if not (OFFICIAL / "test_data_v2.json").exists():
        require_official()
    template = (OFFICIAL / "prompt_template.txt").read_text(encoding="utf-8")
    functions = json.dumps(json.loads((OFFICIAL / "funcs_v1.json").read_text(encoding="utf-8")))
    tasks = json.loads((OFFICIAL / "test_data_v2.json").read_text(encoding="utf-8"))
    return [
        (
            t["id"],
            template.format(api_base=BASE, functions=functions, context=t["context"], question=t["instruction"]),
            t.get("eval_MRN"),
        )
        for t in tasks
    ]


def test_every_official_task_is_recognised_from_its_wording():
    wrong = []
    for task_id, text, mrn in official_prompts():
        facts = read_facts(text)
        category = int(task_id.split("_")[0][4:])
        if facts.category != category or facts.api_base != BASE:
            wrong.append((task_id, facts.category))
        elif category != 1 and facts.mrn != mrn:
            wrong.append((task_id, facts.mrn))
    assert wrong == []


def test_official_task3_value_and_task8_note_are_read_from_the_instruction():
    for task_id, text, _ in official_prompts():
        facts = read_facts(text)
        if facts.category == 3:
            assert re.fullmatch(r"\d+/\d+ mmHg", facts.bp_value or ""), task_id
            assert f'"{facts.bp_value}"' in text
        if facts.category == 8:
            assert (facts.note or "").startswith("Situation:") and (facts.note or "").endswith("recommendations.")


def generated_prompts() -> list[tuple[int, str]]:
    """Every generated instruction x context template, filled with sample values."""
    templates = json.loads((ROOT / "medbench" / "data" / "task_templates.json").read_text(encoding="utf-8"))
    prompt = (ROOT / "medbench" / "data" / "prompt_generated.txt").read_text(encoding="utf-8")
    functions = (ROOT / "medbench" / "data" / "functions_generated.json").read_text(encoding="utf-8")
    values = {
        "mrn": "S1234567",
        "name": "Ana María de la Cruz",
        "dob": "1961-04-30",
        "bp": "128/82 mmHg",
        "note": "Situation: x. Recommendation: y.",
        "now": NOW,
    }
    built = []
    for category, spec in templates["categories"].items():
        for instruction in spec["instructions"]:
            for context in spec["contexts"]:
                question, ctx = instruction.format(**values), context.format(**values)
                built.append(
                    (int(category), prompt.format(api_base=BASE, functions=functions, context=ctx, question=question))
                )
    return built


def test_every_generated_template_is_recognised_with_its_arguments():
    for category, text in generated_prompts():
        facts = read_facts(text)
        assert (facts.category, facts.api_base, facts.now_iso) == (category, BASE, NOW), text[-400:]
        if category == 1:
            assert (facts.mrn, facts.birth_date) == (None, "1961-04-30")
        else:
            assert facts.mrn == "S1234567"
        if category == 3:
            assert facts.bp_value == "128/82 mmHg"
        if category == 8:
            assert facts.note == "Situation: x. Recommendation: y."
