"""Reading an agent's final answer as the public evaluators do: the first balanced `FINISH(...)` whose
inside is a JSON list, code fences removed."""

from __future__ import annotations

import pytest

from medbench.a2a.messages import finish_answer


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ('FINISH(["S1234567"])', '["S1234567"]'),
        ('```tool_code\nFINISH([1.5, "2023-01-01T00:00:00"])\n```', '[1.5, "2023-01-01T00:00:00"]'),
        ('Done. FINISH(["a (b) c", ")"]) and more text', '["a (b) c", ")"]'),
        ("FINISH(maybe) then FINISH([])", "[]"),
        ('FINISH({"a": 1}) FINISH([2])', "[2]"),
    ],
)
def test_the_answer_is_the_first_finish_holding_a_json_list(text: str, answer: str) -> None:
    assert finish_answer(text) == answer


@pytest.mark.parametrize("text", ["", "the patient is fine", "FINISH([1, 2", "FINISH(not json)", "finish([1])"])
def test_a_reply_without_such_a_finish_has_no_answer(text: str) -> None:
    assert finish_answer(text) is None
