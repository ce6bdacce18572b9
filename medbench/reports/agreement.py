"""Where the state grader and the transcript graders disagree, and why (`python -m medbench.reports agreement`).

A `--grader=state` run records, beside each state verdict, the official and corrected verdicts
on the same attempt (runs.jsonl `transcript_verdicts`, computed before the attempt's writes
were dropped). This module counts agreements and explains each disagreement from the
transcript: a POST the server refused, a POST sent twice, a fenced POST, a POST url with a
query string, orders created in another order, a payload the server stored in FHIR's shape.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.agent.protocol import POST_ERROR_PREFIX, POST_INVALID, PostAction, parse_action
from medbench.grading.transcript import ACCEPTED_MARK
from medbench.reports.load import ReportError, ResultsError

TRANSCRIPT_MODES = ("official", "corrected")
_EXAMPLES = 5


@dataclass(frozen=True)
class PostFacts:
    """What the agent's POSTs did, read from one transcript."""

    accepted: tuple[tuple[str, str], ...] = ()  # (url, canonical payload), transcript order
    refused: int = 0
    invalid: int = 0
    fenced: int = 0
    word_only: int = 0  # agent turns with the word POST that are no POST action

    @property
    def duplicated(self) -> bool:
        return len(set(self.accepted)) < len(self.accepted)

    @property
    def query_urls(self) -> int:
        return sum("?" in url for url, _ in self.accepted)

    def resource_types(self) -> list[str]:
        return [url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] for url, _ in self.accepted]


def post_facts(history: Sequence[Mapping[str, str]]) -> PostFacts:
    """Count the POSTs of a transcript by what the loop answered to each."""
    accepted: list[tuple[str, str]] = []
    refused = invalid = fenced = word_only = 0
    for i, turn in enumerate(history):
        if turn.get("role") != "agent":
            continue
        content = turn.get("content", "")
        action = parse_action(content)
        if not isinstance(action, PostAction):
            word_only += "POST" in content
            continue
        reply = history[i + 1].get("content", "") if i + 1 < len(history) else ""
        fenced += not content.lstrip().startswith("POST")
        if reply.startswith(POST_ERROR_PREFIX):
            refused += 1
        elif reply.startswith(POST_INVALID):
            invalid += 1
        elif ACCEPTED_MARK in reply:
            accepted.append((action.url, json.dumps(action.payload, sort_keys=True)))
    return PostFacts(tuple(accepted), refused, invalid, fenced, word_only)


def why(
    state: bool,
    other: bool,
    mode: str,
    facts: PostFacts,
    category: str,
    state_reason: str | None,
    other_reason: str | None,
) -> str:
    """The cause of one disagreement, from the transcript's POSTs (most specific first)."""
    if state and not other:
        if facts.fenced and mode == "official":
            return "a fenced POST: the server created it; the official reading takes the url from the fence line"
        if facts.query_urls:
            return (
                "a POST url with a query string: the server created the resource; "
                "transcript graders compare the url exactly"
            )
        if facts.refused and mode == "official":
            return (
                "a POST the server refused: nothing was created; the official has_post rule counts any turn with POST"
            )
        if facts.word_only and mode == "official":
            return "the word POST in a turn that is no POST: nothing was created; the official has_post rule counts it"
        if category == "task9" and facts.resource_types()[:2] == ["ServiceRequest", "MedicationRequest"]:
            return "orders created lab first: the state has no order, the transcript graders want the medication first"
        if other_reason and any(word in other_reason for word in ("route", "note", "Quantity", "rate")):
            return (
                "the payload's shape: the stored resource passes the clinical checks, "
                "the transcript check wants upstream's shape"
            )
        return f"other: {mode} says {other_reason}"
    if facts.accepted and state_reason and "holds no" in state_reason:
        return "an acknowledged POST the server does not hold"
    if facts.duplicated and state_reason and "duplicates" in state_reason:
        return "a POST made twice: the server holds duplicates"
    return f"other: state says {state_reason}"


class NotStateRun(ReportError):
    """A run folder graded by another mode: it has no transcript verdicts to compare with."""


@dataclass
class Agreement:
    """Agreement of the state verdicts with one run's transcript verdicts."""

    run: str
    model: str
    attempts: int = 0
    state_correct: int = 0
    correct: Counter[str] = field(default_factory=Counter)  # mode -> correct count
    table: dict[str, Counter[tuple[bool, bool]]] = field(default_factory=lambda: defaultdict(Counter))
    causes: dict[tuple[str, bool, bool, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def agreeing(self, mode: str) -> int:
        return self.table[mode][(True, True)] + self.table[mode][(False, False)]

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "model": self.model,
            "attempts": self.attempts,
            "state_correct": self.state_correct,
            "correct": dict(self.correct),
            "agreement": {mode: self.agreeing(mode) for mode in TRANSCRIPT_MODES},
            "disagreements": [
                {"mode": mode, "state": state, "transcript": other, "why": cause, "count": len(ids), "tasks": ids}
                for (mode, state, other, cause), ids in sorted(self.causes.items())
            ],
        }


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise ResultsError(f"{path}:{number} is not JSON ({exc})") from None


def agreement(folder: Path) -> Agreement:
    """The agreement of one state run folder (`runs.jsonl` and `transcripts.jsonl`)."""
    runs = {(r["task_id"], r.get("attempt", 1)): r for r in _read_jsonl(folder / "runs.jsonl")}
    histories = (
        {
            t["transcript_id"]: t.get("history", [])
            for t in _read_jsonl(folder / "transcripts.jsonl")
            if "transcript_id" in t
        }
        if (folder / "transcripts.jsonl").is_file()
        else {}
    )
    if not runs or any("transcript_verdicts" not in r for r in runs.values()):
        raise NotStateRun(
            f"{folder} is not a --grader=state run (its runs.jsonl lines have no transcript_verdicts); "
            "run pytest tests_bench --post-mode=execute --grader=state first"
        )
    model = folder.name
    summary = folder / "summary.json"
    if summary.is_file():
        model = str(json.loads(summary.read_text(encoding="utf-8")).get("model", model))
    result = Agreement(str(folder), model)
    for (task_id, attempt), record in sorted(runs.items(), key=lambda item: item[1].get("index", 0)):
        state = bool(record["correct"])
        result.attempts += 1
        result.state_correct += state
        facts = post_facts(histories.get(record.get("transcript_id", ""), []))
        label = task_id if attempt == 1 else f"{task_id}-attempt{attempt}"
        for mode in TRANSCRIPT_MODES:
            verdict = record["transcript_verdicts"][mode]
            other = bool(verdict["correct"])
            result.correct[mode] += other
            result.table[mode][(state, other)] += 1
            if state != other:
                cause = why(
                    state, other, mode, facts, record.get("category", ""), record.get("reason"), verdict.get("reason")
                )
                result.causes[(mode, state, other, cause)].append(label)
    return result


def run_folders(paths: Sequence[Path]) -> list[tuple[Path, bool]]:
    """(folder, named) for each path that holds runs.jsonl, and for every run folder below a results
    directory (named False: runs of other grader modes there are skipped, not refused)."""
    folders: list[tuple[Path, bool]] = []
    for path in paths:
        if (path / "runs.jsonl").is_file():
            folders.append((path, True))
            continue
        found = sorted(p.parent for p in path.glob("**/runs.jsonl") if "archive" not in p.relative_to(path).parts)
        if not found:
            raise ResultsError(f"{path} holds no runs.jsonl (give a run folder or a results directory)")
        folders.extend((folder, False) for folder in found)
    return folders


def _verdict(correct: bool) -> str:
    return "correct" if correct else "incorrect"


def format_agreement(results: Sequence[Agreement]) -> str:
    """Markdown: per run, the agreement counts and every disagreement with its cause and tasks."""
    lines = ["# State grader vs transcript graders", ""]
    lines += [
        "| run | attempts | state correct | official correct | corrected correct | "
        "agrees with official | agrees with corrected |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.attempts} | {r.state_correct} | {r.correct['official']} | "
            f"{r.correct['corrected']} | {r.agreeing('official')} | {r.agreeing('corrected')} |"
        )
    for r in results:
        lines += ["", f"## {r.model} ({r.run})", ""]
        if not r.causes:
            lines.append("The state verdict agrees with both transcript graders on every attempt.")
            continue
        lines += [
            "| transcript grader | state | transcript | why | attempts | tasks |",
            "| --- | --- | --- | --- | ---: | --- |",
        ]
        for (mode, state, other, cause), ids in sorted(r.causes.items(), key=lambda item: (item[0][0], -len(item[1]))):
            shown = ", ".join(ids[:_EXAMPLES]) + (", ..." if len(ids) > _EXAMPLES else "")
            lines.append(f"| {mode} | {_verdict(state)} | {_verdict(other)} | {cause} | {len(ids)} | {shown} |")
    return "\n".join(lines) + "\n"


def agreement_report(paths: Sequence[Path], as_json: bool = False) -> str:
    """The report for run folders or results directories, as Markdown or JSON text."""
    results = []
    for folder, named in run_folders(paths):
        try:
            results.append(agreement(folder))
        except NotStateRun:
            if named:
                raise
    if not results:
        raise NotStateRun(
            f"no --grader=state run under {', '.join(map(str, paths))}; "
            "run pytest tests_bench --post-mode=execute --grader=state first"
        )
    if as_json:
        return json.dumps([r.to_json() for r in results], indent=2) + "\n"
    return format_agreement(results)
