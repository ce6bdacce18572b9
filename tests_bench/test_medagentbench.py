"""The benchmark: one test per task attempt, parametrized over the task set by the medbench plugin.

A correct verdict passes; an incorrect one fails with the grader's reason and the status.
Run it with `pytest tests_bench --model=NAME --base-url=URL` (see `pytest --help`, group medbench).
"""

from typing import Any

import pytest

from medbench.results.records import verdict_message


def test_task(medbench_attempt: dict[str, Any]) -> None:
    if not medbench_attempt["correct"]:
        pytest.fail(verdict_message(medbench_attempt), pytrace=False)
