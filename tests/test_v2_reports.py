"""Reports of MedAgentBench v2 runs name v2's categories (task1..task10 mean other things in v1)."""

from __future__ import annotations

from pathlib import Path

from helpers.reports import model_lines, write_model
from medbench.reports.analysis import analyse

V2_MODES = {"protocol": "v2-tools", "grader": "official", "post_mode": "execute", "benchmark": "v2"}


def test_a_v2_run_is_reported_with_v2_category_names(tmp_path: Path) -> None:
    write_model(tmp_path, "reference", model_lines([30] * 10), summary={"modes": V2_MODES})
    matrix = analyse(tmp_path).tables["task_difficulty"]
    labels = dict(zip(matrix["Task"], matrix["Description"], strict=True))
    assert labels["task1"] == "CT follow-up (renal mass)" and labels["task8"] == "Naloxone co-prescription"


def test_a_v1_run_keeps_v1_category_names(tmp_path: Path) -> None:
    write_model(tmp_path, "reference", model_lines([30] * 10), summary={"modes": {**V2_MODES, "benchmark": None}})
    matrix = analyse(tmp_path).tables["task_difficulty"]
    assert dict(zip(matrix["Task"], matrix["Description"], strict=True))["task1"] == "Patient lookup"
