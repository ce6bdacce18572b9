"""Training traces: the recorded attempts of runs as chat-format JSONL, with a provenance file.

Each line is `{"messages": [{"role": "user" | "assistant", "content": ...}, ...]}`, the format
OpenAI fine-tuning and Hugging Face TRL read; the roles are the ones the model was sent (the
MedAgentBench protocol puts everything in the opening user turn, so there is no system turn).
The guard refuses attempts of the official task set, or of any task whose instruction is an
official one: training on them leaks the benchmark into the model being measured.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medbench import __version__
from medbench.reports.load import (
    ARCHIVE_DIR,
    ReportError,
    ResultsError,
    category_sort_key,
    model_folders,
    task_category,
)
from medbench.reports.transcripts import Attempt, iter_attempts
from medbench.results.records import RUNS_FILE
from medbench.tasks.official import OfficialAssetsError, load_official
from medbench.tasks.task import TaskSet

ROLES = {"agent": "assistant", "user": "user", "system": "system"}
RECIPE = (
    "Make a training set instead: generate tasks with another seed (and another EHR), run a teacher model on them,\n"
    "and export those attempts:\n"
    "  pytest tests_bench --model=reference --task-seed=17 --ehr-seed=17 --disable-recording -n 2 --results-dir=train-results\n"
    "  python -m medbench.reports export-traces train-results/reference --out traces.jsonl\n"
    "Pass --allow-test-set only to export test-set attempts for analysis, never for training."
)


class ContaminationError(ReportError):
    """Attempts of the official test set (or copies of its instructions) were about to be exported."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export: correct attempts only by default."""

    with_incorrect: bool = False
    one_per_task: bool = False
    categories: tuple[str, ...] = ()
    allow_test_set: bool = False


@dataclass
class RunSource:
    """One run folder and what its summary (or manifest) says it was."""

    path: Path
    model: str
    task_set: dict[str, Any]
    modes: dict[str, Any]
    environment: dict[str, Any]
    counts: Counter = field(default_factory=Counter)

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "model": self.model,
            "task_set": self.task_set,
            "grader": self.modes.get("grader"),
            "protocol": self.modes.get("protocol"),
            "modes": self.modes,
            "environment": self.environment,
            "lines": self.counts["correct"] + self.counts["incorrect"],
            "correct": self.counts["correct"],
            "incorrect": self.counts["incorrect"],
        }


def run_folders(paths: list[Path]) -> list[Path]:
    """Each argument is a run folder (holding runs.jsonl) or a results folder of model folders."""
    folders: list[Path] = []
    for path in map(Path, paths):
        if (path / RUNS_FILE).is_file():
            found = [path]
        elif path.is_dir():
            found = model_folders(path)
        else:
            raise ResultsError(f"{path} does not exist; pass a run folder (with runs.jsonl) or a results folder")
        if not found:
            raise ResultsError(f"no runs.jsonl in {path} or its model folders")
        folders += [f for f in found if f not in folders and ARCHIVE_DIR not in f.parts]
    return folders


def read_source(folder: Path) -> RunSource:
    """The run's identity from summary.json, else run.json; absent fields read as unrecorded."""
    summary = _json_file(folder / "summary.json")
    identity = _json_file(folder / "run.json").get("identity") or {}
    task_set = (
        summary.get("task_set")
        if isinstance(summary.get("task_set"), dict)
        else {"name": identity.get("task_set"), "sha256": identity.get("task_set_sha256")}
    )
    modes = (
        summary.get("modes")
        if isinstance(summary.get("modes"), dict)
        else {
            key: identity[key]
            for key in ("protocol", "grader", "post_mode", "max_rounds", "strip_think")
            if key in identity
        }
    )
    environment = summary.get("environment") or identity.get("environment") or {}
    model = str(summary.get("model") or identity.get("model") or folder.name)
    return RunSource(folder, model, dict(task_set), dict(modes), dict(environment))


def _json_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def chat_messages(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """A transcript's turns as chat messages: the agent's answers are the assistant's."""
    return [
        {"role": ROLES.get(str(turn.get("role")), "user"), "content": str(turn.get("content", ""))} for turn in history
    ]


def official_overlap(source: RunSource, attempts: list[Attempt], official: TaskSet) -> str | None:
    """Why these attempts are test-set attempts (the whole task set, or tasks quoting an official instruction), or None."""
    if source.task_set.get("sha256") == official.sha256 or source.task_set.get("name") == official.name:
        return (
            f"its task set {source.task_set.get('name')!r} (sha256 {official.sha256[:12]}...) is the official test set"
        )
    instructions = [(task.id, task.instruction.strip()) for task in official.tasks if task.instruction.strip()]
    copies = []
    for attempt in attempts:
        prompt = attempt.history[0].get("content", "") if attempt.history else ""
        copied = next((official_id for official_id, text in instructions if text in prompt), None)
        if copied:
            copies.append(f"{attempt.key[0]} (= official {copied})")
    if not copies:
        return None
    shown = ", ".join(copies[:5]) + (f" and {len(copies) - 5} more" if len(copies) > 5 else "")
    return f"{len(copies)} attempt(s) quote the instruction of an official task: {shown}"


def select_attempts(source: RunSource, options: ExportOptions, seen: set[tuple[str, str]]) -> list[Attempt]:
    """The attempts to export from one run, counting what was left out and why in `source.counts`.

    Attempts arrive in task and attempt order, and incorrect ones are dropped before the
    one-per-task check, so `one_per_task` keeps each task's first correct attempt (its first
    attempt of any verdict with `with_incorrect`). A task is its task id within its task set.
    """
    chosen = []
    for attempt in iter_attempts(source.path):
        run = attempt.run
        category = str(run.get("category") or task_category(attempt.key[0]))
        if options.categories and category not in options.categories:
            source.counts["skipped_category"] += 1
        elif not run.get("correct") and not options.with_incorrect:
            source.counts["skipped_incorrect"] += 1
        elif not attempt.history:
            source.counts["skipped_no_transcript"] += 1
        elif options.one_per_task and (str(source.task_set.get("sha256")), attempt.key[0]) in seen:
            source.counts["skipped_repeat"] += 1
        else:
            if options.one_per_task:
                seen.add((str(source.task_set.get("sha256")), attempt.key[0]))
            chosen.append(attempt)
    return chosen


def trace_line(source: RunSource, attempt: Attempt, with_verdict: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"messages": chat_messages(attempt.history)}
    if with_verdict:
        run = attempt.run
        line.update(
            task_id=attempt.key[0],
            attempt=attempt.key[1],
            model=source.model,
            verdict={"correct": bool(run.get("correct")), "status": run.get("status"), "reason": run.get("reason")},
        )
    return line


@dataclass(frozen=True)
class ExportResult:
    traces: Path
    provenance: Path
    lines: int


def provenance_path(out: Path) -> Path:
    """`traces.jsonl` -> `traces.provenance.json`, beside it."""
    return out.with_name(out.name.removesuffix(".jsonl") + ".provenance.json")


def export_traces(
    paths: list[Path], out: Path, options: ExportOptions = ExportOptions(), official_dir: Path | None = None
) -> ExportResult:
    """Write the chosen attempts of every run under `paths` to `out`, and the provenance file beside it.

    Lines stream into a temporary file, one run in memory at a time, which becomes `out` only
    when every run passed the guard: nothing is written when it refuses (ContaminationError)
    or when the official task set, needed for the check, cannot be loaded (ReportError).
    """
    sources = [read_source(folder) for folder in run_folders(paths)]
    official = _official(official_dir, required=not options.allow_test_set)
    seen: set[tuple[str, str]] = set()
    findings: list[str] = []
    categories: Counter = Counter()
    digest = hashlib.sha256()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for source in sources:
                attempts = select_attempts(source, options, seen)
                why = official_overlap(source, attempts, official) if official is not None else None
                findings += [f"{source.path}: {why}"] if why else []
                if findings and not options.allow_test_set:
                    continue  # keep checking the other runs, so the refusal lists them all
                for attempt in attempts:
                    line = json.dumps(trace_line(source, attempt, options.with_incorrect), ensure_ascii=False) + "\n"
                    handle.write(line)
                    digest.update(line.encode("utf-8"))
                    source.counts["correct" if attempt.run.get("correct") else "incorrect"] += 1
                    categories[str(attempt.run.get("category") or task_category(attempt.key[0]))] += 1
        if findings and not options.allow_test_set:
            raise ContaminationError(
                "refusing to export training traces from the MedAgentBench test set:\n  " + "\n  ".join(findings) + "\n"
                "Training on test-set tasks, or on copies of their instructions, leaks the benchmark into the model: "
                "its later MedAgentBench scores would measure memory, not skill.\n" + RECIPE
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    check = (
        {"checked_against": official.name, "official_sha256": official.sha256, "overlap": findings}
        if official is not None
        else {"checked_against": None, "overlap": None}
    )
    provenance = provenance_path(out)
    _write_atomically(
        provenance,
        json.dumps(
            _provenance(out, digest.hexdigest(), sources, options, check, categories), indent=2, ensure_ascii=False
        )
        + "\n",
    )
    return ExportResult(out, provenance, sum(categories.values()))


def _official(official_dir: Path | None, required: bool) -> TaskSet | None:
    """The official task set for the guard; with --allow-test-set only for the provenance record."""
    try:
        return load_official(official_dir=official_dir)
    except OfficialAssetsError as exc:
        if not required:
            return None
        raise ReportError(
            "cannot check these runs against the official MedAgentBench tasks, so nothing was exported:\n"
            f"{exc}\nProvide the official assets (--official-dir or MEDBENCH_OFFICIAL_DIR), or pass --allow-test-set "
            "to export without the check."
        ) from None


def _provenance(
    out: Path, sha256: str, sources: list[RunSource], options: ExportOptions, check: dict[str, Any], categories: Counter
) -> dict[str, Any]:
    total = Counter()
    for source in sources:
        total.update(source.counts)
    return {
        "format": 'chat JSONL: one {"messages": [...]} object per line (OpenAI fine-tuning, Hugging Face TRL)',
        "traces": out.name,
        "traces_sha256": sha256,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harness_version": __version__,
        "options": {
            "with_incorrect": options.with_incorrect,
            "one_per_task": options.one_per_task,
            "categories": list(options.categories),
            "allow_test_set": options.allow_test_set,
        },
        "counts": {
            "lines": total["correct"] + total["incorrect"],
            "correct": total["correct"],
            "incorrect": total["incorrect"],
            "runs": len(sources),
            "by_category": {c: categories[c] for c in sorted(categories, key=category_sort_key)},
            "skipped": {
                "incorrect": total["skipped_incorrect"],
                "other_category": total["skipped_category"],
                "no_transcript": total["skipped_no_transcript"],
                "repeat_of_task": total["skipped_repeat"],
            },
        },
        "runs": [source.describe() for source in sources],
        "contamination_check": check,
    }


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
