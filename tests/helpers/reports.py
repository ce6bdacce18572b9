"""Builders for hand-made result folders used by the tests/test_reports_*.py files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomllib

DATA = Path(__file__).resolve().parents[1] / "data" / "reports"
CATEGORIES = [f"task{i}" for i in range(1, 11)]


def run_line(task_id: str, correct: bool, status: str = "completed", **extra: Any) -> dict[str, Any]:
    line = {
        "task_id": task_id,
        "status": status,
        "correct": correct,
        "result": "[]",
        "num_turns": 2,
        "time": "2026-02-05 11:23:45",
    }
    line.update(extra)
    return line


def write_model(
    root: Path, slug: str, lines: list[dict[str, Any]], model: str | None = None, summary: dict[str, Any] | None = None
) -> Path:
    """A <root>/<slug>/ folder with runs.jsonl (indices added) and an upstream-style summary.json."""
    folder = root / slug
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "runs.jsonl").open("w", encoding="utf-8") as handle:
        for index, line in enumerate(lines):
            handle.write(json.dumps({"index": index, **line}) + "\n")
    correct = sum(line["correct"] for line in lines)
    body = {
        "model": model or slug,
        "total": len(lines),
        "correct": correct,
        "accuracy": round(100 * correct / len(lines), 1),
        "elapsed_seconds": 600.0,
    }
    body.update(summary or {})
    (folder / "summary.json").write_text(json.dumps(body), encoding="utf-8")
    return folder


def model_lines(
    correct_per_task: list[int],
    totals: list[int] | None = None,
    invalid_action: int = 0,
    limit_reached: int = 0,
    error: int = 0,
) -> list[dict[str, Any]]:
    """Per-category counts -> run lines; failure statuses go to the first incorrect tasks."""
    totals = totals or [30] * len(correct_per_task)
    failures = ["agent_invalid_action"] * invalid_action + ["limit_reached"] * limit_reached + ["error"] * error
    lines = []
    for category, correct, total in zip(CATEGORIES, correct_per_task, totals):
        for number in range(1, total + 1):
            is_correct = number <= correct
            status = "completed" if is_correct or not failures else failures.pop()
            lines.append(run_line(f"{category}_{number}", is_correct, status))
    assert not failures, "more failure statuses than incorrect tasks"
    return lines


def write_published_15(root: Path) -> Path:
    """The 15 models of the published table (tests/data/reports/published_15.toml)."""
    spec = tomllib.loads((DATA / "published_15.toml").read_text(encoding="utf-8"))
    for model in spec["model"]:
        lines = model_lines(
            model["correct"], model.get("total"), model["invalid_action"], model["limit_reached"], model["error"]
        )
        write_model(root, model["slug"], lines, model=model["model"])
    return root
