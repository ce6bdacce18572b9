"""CI gates: thresholds per run and per category, and infrastructure failures."""

import pytest

from medbench.results.gates import (
    Gate,
    GateSpecError,
    failed_gates,
    parse_task_gate,
    parse_threshold,
)

SUMMARY = {
    "total": 10,
    "correct": 9,
    "infrastructure_failures": 0,
    "task_breakdown": {"task5": {"total": 5, "correct": 4}, "task1": {"total": 5, "correct": 5}},
}


def test_threshold_reads_fractions_and_percentages() -> None:
    assert parse_threshold("0.9") == 0.9
    assert parse_threshold("85%") == pytest.approx(0.85)


@pytest.mark.parametrize("text", ["1.5", "abc", "-0.1", "120%"])
def test_threshold_outside_zero_and_one_is_refused(text: str) -> None:
    with pytest.raises(GateSpecError, match="--min-accuracy"):
        parse_threshold(text)


def test_task_gate_names_a_category_and_a_threshold() -> None:
    assert parse_task_gate("task5=0.8") == Gate("task5", 0.8)
    assert parse_task_gate("task10=90%") == Gate("task10", 0.9)


@pytest.mark.parametrize("text", ["task11=0.5", "task5", "5=0.8", "task5=x"])
def test_malformed_task_gate_shows_the_expected_form(text: str) -> None:
    with pytest.raises(GateSpecError):
        parse_task_gate(text)


def test_no_gates_means_nothing_fails() -> None:
    assert failed_gates({"total": 0, "infrastructure_failures": 3}, []) == []


def test_gates_at_exactly_the_threshold_hold() -> None:
    assert failed_gates(SUMMARY, [Gate(None, 0.9), Gate("task5", 0.8)]) == []


def test_each_failed_gate_gives_one_line() -> None:
    lines = failed_gates(SUMMARY, [Gate(None, 0.95), Gate("task5", 0.9), Gate("task1", 1.0)])
    assert lines == ["overall accuracy >= 95.0%: got 90.0% (9/10)", "task5 accuracy >= 90.0%: got 80.0% (4/5)"]


def test_a_gate_on_a_category_without_attempts_fails() -> None:
    assert failed_gates(SUMMARY, [Gate("task7", 0.1)]) == ["task7 accuracy >= 10.0%: no task7 attempts recorded"]


def test_infrastructure_failures_fail_a_gate_that_accuracy_would_pass() -> None:
    lines = failed_gates({**SUMMARY, "infrastructure_failures": 1}, [Gate(None, 0.5)])
    assert len(lines) == 1 and "without a model verdict" in lines[0]
    assert failed_gates(SUMMARY, [Gate(None, 0.5)], unrecorded=2)[0].startswith("2 task attempt(s)")
