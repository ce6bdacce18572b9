"""Read a results directory (one folder per model) into plain records.

Reports must work on folders written by our harness and by the upstream one, so every field
beyond the upstream core (task_id, status, correct) is optional here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.results.summary import latest_records

_CATEGORY = re.compile(r"^(.*)_[^_]+$")
ARCHIVE_DIR = "archive"


class ReportError(Exception):
    """Base of every input problem the reports refuse; the message says what to fix."""


class ResultsError(ReportError):
    """A results directory or file that cannot be read; the message names the path to fix."""


@dataclass(frozen=True)
class RunRecord:
    """One line of runs.jsonl: one attempt at one task."""

    task_id: str
    category: str
    correct: bool
    status: str
    attempt: int = 1
    num_turns: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ModelResults:
    """Everything recorded for one model folder."""

    slug: str
    model: str
    records: tuple[RunRecord, ...]
    modes: dict[str, Any] = field(default_factory=dict)
    elapsed_seconds: float | None = None

    @property
    def file_stem(self) -> str:
        """The slug made safe for one file name (`gpt-4o/t0` -> `gpt-4o__t0`)."""
        return self.slug.replace("/", "__")

    @property
    def attempts_per_task(self) -> int:
        """The largest number of attempts recorded for any task (1 without repeats)."""
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.task_id] = counts.get(record.task_id, 0) + 1
        return max(counts.values(), default=0)

    def first_attempts(self) -> dict[str, RunRecord]:
        """The lowest-numbered attempt per task, for paired comparisons between models."""
        first: dict[str, RunRecord] = {}
        for record in self.records:
            kept = first.get(record.task_id)
            if kept is None or record.attempt < kept.attempt:
                first[record.task_id] = record
        return first


def task_category(task_id: str) -> str:
    """`task10_7` -> `task10`: the category is everything before the last underscore."""
    match = _CATEGORY.match(task_id)
    return match.group(1) if match else task_id


def category_sort_key(category: str) -> tuple[str, int, str]:
    """Natural order, so task10 sorts after task9."""
    match = re.match(r"^(\D*)(\d+)(.*)$", category)
    if not match:
        return (category, -1, "")
    return (match.group(1), int(match.group(2)), match.group(3))


def _optional_number(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def parse_run_line(line: dict[str, Any], where: str) -> RunRecord:
    """One runs.jsonl object -> RunRecord; `where` (file:line) goes into errors."""
    try:
        task_id = str(line["task_id"])
        status = str(line["status"])
    except KeyError as exc:
        raise ResultsError(
            f"{where}: missing field {exc.args[0]!r} (every runs.jsonl line needs task_id and status)"
        ) from None
    reason = line.get("reason")
    return RunRecord(
        task_id=task_id,
        category=str(line.get("category") or task_category(task_id)),
        correct=bool(line.get("correct", False)),
        status=status,
        attempt=_optional_number(line.get("attempt"), int) or 1,
        num_turns=_optional_number(line.get("num_turns"), int),
        prompt_tokens=_optional_number(line.get("prompt_tokens"), int),
        completion_tokens=_optional_number(line.get("completion_tokens"), int),
        latency_s=_optional_number(line.get("latency_s"), float),
        reason=None if reason is None else str(reason),
    )


def read_runs(path: Path) -> tuple[list[RunRecord], dict[str, Any]]:
    """Records of one runs.jsonl, and the `modes` of its first line that has any.

    A resumed run may repeat a (task, attempt) pair; the last line wins, by the harness's own
    rule (`medbench.results.summary.latest_records`). Unlike the harness, which skips a torn
    line, a report refuses a file it cannot read whole, naming the line.
    """
    lines: list[dict[str, Any]] = []
    where_of: dict[int, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{number}"
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ResultsError(f"{where}: not valid JSON ({exc.msg}); fix or delete that line") from None
            if not isinstance(line, dict):
                raise ResultsError(f"{where}: expected a JSON object per line")
            parse_run_line(line, where)  # every line must be readable, the superseded ones too
            lines.append(line)
            where_of[id(line)] = where
    modes = next((line["modes"] for line in lines if isinstance(line.get("modes"), dict)), {})
    return [parse_run_line(line, where_of[id(line)]) for line in latest_records(lines)], modes


def summary_modes(summary: dict[str, Any], line_modes: dict[str, Any]) -> dict[str, Any]:
    """The modes a run was measured under, wherever its writer put them.

    medbench writes `modes` plus a `task_set` object {name, sha256}; other writers may put
    `task_set` and `task_set_sha256` inside `modes`, or only on each runs.jsonl line.
    """
    modes = dict(summary["modes"]) if isinstance(summary.get("modes"), dict) else dict(line_modes)
    task_set = summary.get("task_set")
    if isinstance(task_set, dict):
        modes.setdefault("task_set", task_set.get("name"))
        modes.setdefault("task_set_sha256", task_set.get("sha256"))
    return {key: value for key, value in modes.items() if value is not None}


def load_model_folder(folder: Path, slug: str) -> ModelResults:
    """One model folder with runs.jsonl; summary.json is optional."""
    records, line_modes = read_runs(folder / "runs.jsonl")
    summary: dict[str, Any] = {}
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{summary_path}: not valid JSON ({exc.msg})") from None
    return ModelResults(
        slug=slug,
        model=str(summary.get("model") or slug),
        records=tuple(records),
        modes=summary_modes(summary, line_modes),
        elapsed_seconds=_optional_number(summary.get("elapsed_seconds"), float),
    )


def model_folders(results_dir: Path) -> list[Path]:
    """`<model_slug>/runs.jsonl` and `<model_slug>/<run_name>/runs.jsonl`, never archived runs."""
    found = [*results_dir.glob("*/runs.jsonl"), *results_dir.glob("*/*/runs.jsonl")]
    return sorted(p.parent for p in found if ARCHIVE_DIR not in p.relative_to(results_dir).parts)


def load_results(results_dir: Path) -> list[ModelResults]:
    """Every model folder (see model_folders) with at least one line, sorted by slug.

    The slug is the folder path below results_dir (`model` or `model/run_name`).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(
            f"results directory {results_dir} does not exist; pass the folder that holds one <model_slug>/ folder per model"
        )
    models = [
        load_model_folder(folder, folder.relative_to(results_dir).as_posix()) for folder in model_folders(results_dir)
    ]
    models = [m for m in models if m.records]
    if not models:
        raise ResultsError(
            f"no model results under {results_dir}: expected {results_dir}/<model_slug>/runs.jsonl with at least one line"
        )
    return models
