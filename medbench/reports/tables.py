"""Cross-model tables as pandas DataFrames: pure functions of loaded results and metadata.

Column names are part of the user-facing contract (docs/reports.md, "Files written"); the upstream
names (Rank, Model, Accuracy (%), Correct, Total, ...) are kept so existing tooling works.
Accuracy counts every recorded attempt; ranks are competition ranks on exact accuracy.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

import pandas as pd

from medbench.outcomes import (
    COMPLETED,
    CONTEXT_LIMIT,
    ERROR,
    INVALID_ACTION,
    LIMIT_REACHED,
)
from medbench.reports.comparisons import competition_ranks, mcnemar_exact
from medbench.reports.load import ModelResults, ReportError, category_sort_key
from medbench.reports.metadata import Catalog, ModelInfo
from medbench.results.stats import pass_at_k, pass_hat_k, wilson_interval

_KNOWN_STATUSES = {COMPLETED, INVALID_ACTION, LIMIT_REACHED, CONTEXT_LIMIT, ERROR}


class UnknownModelError(ReportError):
    """A model named on the command line is not among the loaded results."""


@dataclass(frozen=True)
class Entry:
    """One model as it appears in every table: its results, metadata and a unique name."""

    results: ModelResults
    info: ModelInfo
    name: str

    @property
    def correct(self) -> int:
        return sum(r.correct for r in self.results.records)

    @property
    def total(self) -> int:
        return len(self.results.records)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total

    @cached_property
    def _by_category(self) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for record in self.results.records:
            correct, total = counts.get(record.category, (0, 0))
            counts[record.category] = (correct + record.correct, total + 1)
        return counts

    def category_counts(self, category: str) -> tuple[int, int]:
        """(correct, total) attempts in one task category; (0, 0) if none were recorded."""
        return self._by_category.get(category, (0, 0))

    def status_count(self, status: str) -> int:
        return sum(r.status == status for r in self.results.records)


def pct(numerator: float, denominator: float) -> float:
    """A percentage with one decimal, as the published tables show it; NaN for 0/0."""
    return round(100 * numerator / denominator, 1) if denominator else float("nan")


def build_entries(models: list[ModelResults], catalog: Catalog) -> list[Entry]:
    """Entries sorted best first (ties by name); clashing display names get the slug appended."""
    infos = [catalog.info_for(m.slug, m.model) for m in models]
    names = Counter(info.display_name for info in infos)
    entries = [
        Entry(m, info, info.display_name if names[info.display_name] == 1 else f"{info.display_name} ({m.slug})")
        for m, info in zip(models, infos)
    ]
    return sorted(entries, key=lambda e: (-e.accuracy, e.name))


def categories(entries: list[Entry]) -> list[str]:
    found = {r.category for e in entries for r in e.results.records}
    return sorted(found, key=category_sort_key)


def find_entry(entries: list[Entry], wanted: str) -> Entry:
    """Match a folder slug, recorded model name or display name (case-insensitive)."""
    needle = wanted.casefold()
    for entry in entries:  # a folder slug first: one model may have several runs (`reference`, `reference/tools`)
        if needle == entry.results.slug.casefold():
            return entry
    for entry in entries:
        if needle in {entry.results.model.casefold(), entry.name.casefold(), entry.info.display_name.casefold()}:
            return entry
    known = ", ".join(e.results.slug for e in entries)
    raise UnknownModelError(f"no model {wanted!r} in these results; known model folders: {known}")


def _ranked(entries: list[Entry], scores: list[float]) -> list[tuple[int, Entry, float]]:
    ranks = competition_ranks(scores)
    return sorted(zip(ranks, entries, scores), key=lambda t: (t[0], t[1].name))


def leaderboard(entries: list[Entry]) -> pd.DataFrame:
    """One row per model: rank with ties, accuracy with Wilson 95% interval, status counts."""
    all_tasks = {r.task_id for e in entries for r in e.results.records}
    rows = []
    for rank, entry, _ in _ranked(entries, [e.accuracy for e in entries]):
        low, high = wilson_interval(entry.correct, entry.total)
        recorded = {r.task_id for r in entry.results.records}
        elapsed = entry.results.elapsed_seconds
        rows.append(
            {
                "Rank": rank,
                "Model": entry.name,
                "Slug": entry.results.slug,
                "Provider": entry.info.provider or "",
                "Parameters": entry.info.parameters or "",
                "Endpoint": entry.info.endpoint or "",
                "Accuracy (%)": pct(entry.correct, entry.total),
                "CI Low (%)": round(100 * low, 1),
                "CI High (%)": round(100 * high, 1),
                "Correct": entry.correct,
                "Total": entry.total,
                "Completed": entry.status_count(COMPLETED),
                "Invalid Actions": entry.status_count(INVALID_ACTION),
                "Limit Reached": entry.status_count(LIMIT_REACHED),
                "Context Limit": entry.status_count(CONTEXT_LIMIT),
                "Errors": entry.status_count(ERROR),
                "Missing": len(all_tasks - recorded),
                "Attempts": entry.results.attempts_per_task,
                "Time (min)": round(elapsed / 60, 1) if elapsed is not None else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def task_accuracy_matrix(entries: list[Entry], catalog: Catalog) -> pd.DataFrame:
    """Tasks x models accuracy (%), models in leaderboard order, plus an Overall row."""
    rows = []
    for category in categories(entries):
        row = {"Task": category, "Description": catalog.task_label(category)}
        for entry in entries:
            row[entry.name] = pct(*entry.category_counts(category))
        rows.append(row)
    overall = {"Task": "Overall", "Description": "Overall Accuracy"}
    overall.update({e.name: pct(e.correct, e.total) for e in entries})
    rows.append(overall)
    return pd.DataFrame(rows)


def task_intervals(entries: list[Entry], catalog: Catalog) -> pd.DataFrame:
    """Long form: one row per model and task with its Wilson 95% interval."""
    rows = []
    for entry in entries:
        for category in categories(entries):
            correct, total = entry.category_counts(category)
            low, high = wilson_interval(correct, total)
            rows.append(
                {
                    "Model": entry.name,
                    "Task": category,
                    "Description": catalog.task_label(category),
                    "Correct": correct,
                    "Total": total,
                    "Accuracy (%)": pct(correct, total),
                    "CI Low (%)": round(100 * low, 1),
                    "CI High (%)": round(100 * high, 1),
                }
            )
    return pd.DataFrame(rows)


def _task_scores(entries: list[Entry], category: str) -> list[float]:
    scores = []
    for entry in entries:
        correct, total = entry.category_counts(category)
        scores.append(correct / total if total else 0.0)
    return scores


def task_rankings(entries: list[Entry], catalog: Catalog) -> pd.DataFrame:
    """Long form: per task, every model with its rank (ties share a rank) and score."""
    rows = []
    for category in categories(entries):
        for rank, entry, score in _ranked(entries, _task_scores(entries, category)):
            rows.append(
                {
                    "Task": category,
                    "Description": catalog.task_label(category),
                    "Rank": rank,
                    "Model": entry.name,
                    "Score (%)": round(100 * score, 1),
                }
            )
    return pd.DataFrame(rows)


def model_rankings_per_task(entries: list[Entry]) -> pd.DataFrame:
    """Models x tasks: each model's rank on each task (1 = best, ties share)."""
    cats = categories(entries)
    ranks = {c: competition_ranks(_task_scores(entries, c)) for c in cats}
    rows = []
    for index, entry in enumerate(entries):
        row: dict[str, object] = {"Model": entry.name}
        row.update({c: ranks[c][index] for c in cats})
        rows.append(row)
    return pd.DataFrame(rows)


def model_comparison(entries: list[Entry], highlight: Entry, catalog: Catalog) -> pd.DataFrame:
    """One model vs the field (the mean of all other models) per task."""
    others = [e for e in entries if e is not highlight]
    rows = []
    for category in categories(entries):
        scores = _task_scores(entries, category)
        mine = scores[entries.index(highlight)]
        field_scores = [s for e, s in zip(entries, scores) if e is not highlight]
        best = max(scores)
        rank = competition_ranks(scores)[entries.index(highlight)]
        rows.append(
            {
                "Task": category,
                "Description": catalog.task_label(category),
                "Score (%)": round(100 * mine, 1),
                "Field Average (%)": round(100 * statistics.fmean(field_scores), 1) if others else float("nan"),
                "Delta (%)": round(100 * (mine - statistics.fmean(field_scores)), 1) if others else float("nan"),
                "Rank": rank,
                "Of": len(entries),
                "Best Model": "; ".join(e.name for e, s in zip(entries, scores) if s == best),
                "Best Score (%)": round(100 * best, 1),
            }
        )
    return pd.DataFrame(rows)


def task_difficulty(entries: list[Entry], catalog: Catalog) -> pd.DataFrame:
    """Tasks from hardest (rank 1) to easiest by the mean of per-model accuracies."""
    cats = categories(entries)
    scores_by_task = {c: _task_scores(entries, c) for c in cats}
    means = [statistics.fmean(scores_by_task[c]) for c in cats]
    ranks = competition_ranks([-m for m in means])
    rows = []
    for rank, category in sorted(zip(ranks, cats), key=lambda t: (t[0], category_sort_key(t[1]))):
        scores = scores_by_task[category]
        low, high = min(scores), max(scores)
        rows.append(
            {
                "Rank": rank,
                "Task": category,
                "Description": catalog.task_label(category),
                "Average Accuracy (%)": round(100 * statistics.fmean(scores), 1),
                "Std Dev": round(100 * statistics.pstdev(scores), 1),
                "Hardest For": "; ".join(e.name for e, s in zip(entries, scores) if s == low),
                "Easiest For": "; ".join(e.name for e, s in zip(entries, scores) if s == high),
                "Models at 100%": sum(s == 1.0 for s in scores),
                "Models at 0%": sum(s == 0.0 for s in scores),
            }
        )
    return pd.DataFrame(rows)


def task_analysis(entries: list[Entry], catalog: Catalog) -> pd.DataFrame:
    """Difficulty statistics and every model's score per task in one table."""
    matrix = task_accuracy_matrix(entries, catalog)
    difficulty = task_difficulty(entries, catalog).drop(columns=["Description"])
    combined = matrix.merge(difficulty, on="Task", how="left")
    leading = ["Task", "Description", "Rank", "Average Accuracy (%)", "Std Dev", "Hardest For", "Easiest For"]
    rest = [c for c in combined.columns if c not in leading and c not in ("Models at 100%", "Models at 0%")]
    return combined[leading + rest].rename(columns={"Rank": "Difficulty Rank"})


def failure_breakdown(entries: list[Entry]) -> pd.DataFrame:
    """Where attempts went: correct, wrong answers and each failure status (format adherence)."""
    rows = []
    for entry in entries:
        records = entry.results.records
        rows.append(
            {
                "Model": entry.name,
                "Total": entry.total,
                "Correct": entry.correct,
                "Completed Incorrect": sum(r.status == COMPLETED and not r.correct for r in records),
                "Invalid Actions": entry.status_count(INVALID_ACTION),
                "Limit Reached": entry.status_count(LIMIT_REACHED),
                "Context Limit": entry.status_count(CONTEXT_LIMIT),
                "Errors": entry.status_count(ERROR),
                "Other": sum(r.status not in _KNOWN_STATUSES for r in records),
                "Invalid Action Rate (%)": pct(entry.status_count(INVALID_ACTION), entry.total),
            }
        )
    return pd.DataFrame(rows)


def failure_reasons(entries: list[Entry]) -> pd.DataFrame:
    """Counts of each (status, grader reason) among incorrect attempts, most frequent first."""
    rows = []
    for entry in entries:
        counts = Counter((r.status, r.reason or "") for r in entry.results.records if not r.correct)
        for (status, reason), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append({"Model": entry.name, "Status": status, "Reason": reason, "Count": count})
    return pd.DataFrame(rows, columns=["Model", "Status", "Reason", "Count"])


def pass_k_table(entries: list[Entry]) -> pd.DataFrame:
    """pass@k and pass^k for k = 1..n on tasks with n >= k attempts (models with repeats only)."""
    rows = []
    for entry in entries:
        n_attempts = entry.results.attempts_per_task
        if n_attempts < 2:
            continue
        per_task: dict[str, list[bool]] = {}
        for record in entry.results.records:
            per_task.setdefault(record.task_id, []).append(record.correct)
        for k in range(1, n_attempts + 1):
            eligible = [v for v in per_task.values() if len(v) >= k]
            at_k = statistics.fmean(pass_at_k(len(v), sum(v), k) for v in eligible)
            hat_k = statistics.fmean(pass_hat_k(len(v), sum(v), k) for v in eligible)
            rows.append(
                {
                    "Model": entry.name,
                    "k": k,
                    "pass@k (%)": round(100 * at_k, 1),
                    "pass^k (%)": round(100 * hat_k, 1),
                    "Tasks": len(eligible),
                }
            )
    return pd.DataFrame(rows, columns=["Model", "k", "pass@k (%)", "pass^k (%)", "Tasks"])


def efficiency(entries: list[Entry]) -> pd.DataFrame:
    """Tokens, model latency and cost in total and per correct task, where recorded.

    Cost needs per-million-token prices in the models file; absent values stay empty
    rather than being guessed.
    """
    rows = []
    for entry in entries:
        records = entry.results.records
        prompt = _sum_recorded([r.prompt_tokens for r in records])
        completion = _sum_recorded([r.completion_tokens for r in records])
        latency = _sum_recorded([r.latency_s for r in records])
        cost = _cost(entry.info, prompt, completion)
        correct = entry.correct
        tokens = None if prompt is None and completion is None else (prompt or 0) + (completion or 0)
        rows.append(
            {
                "Model": entry.name,
                "Correct": correct,
                "Prompt Tokens": prompt,
                "Completion Tokens": completion,
                "Tokens per Correct": _per(tokens, correct, 0),
                "Model Latency (s)": None if latency is None else round(latency, 1),
                "Latency per Correct (s)": _per(latency, correct, 2),
                "Cost (USD)": None if cost is None else round(cost, 4),
                "Cost per Correct (USD)": _per(cost, correct, 5),
            }
        )
    return pd.DataFrame(rows)


def has_efficiency_data(entries: list[Entry]) -> bool:
    return any(r.prompt_tokens is not None or r.latency_s is not None for e in entries for r in e.results.records)


def _sum_recorded(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _per(total: float | None, correct: int, digits: int) -> float | None:
    if total is None or correct == 0:
        return None
    return round(total / correct, digits) if digits else round(total / correct)


def _cost(info: ModelInfo, prompt: float | None, completion: float | None) -> float | None:
    if info.input_usd_per_mtok is None or info.output_usd_per_mtok is None or prompt is None or completion is None:
        return None
    return (prompt * info.input_usd_per_mtok + completion * info.output_usd_per_mtok) / 1e6


def paired_comparison(a: Entry, b: Entry) -> dict[str, object]:
    """McNemar exact test on the tasks both models attempted (first attempt of each)."""
    first_a, first_b = a.results.first_attempts(), b.results.first_attempts()
    shared = sorted(first_a.keys() & first_b.keys())
    both = sum(first_a[t].correct and first_b[t].correct for t in shared)
    only_a = sum(first_a[t].correct and not first_b[t].correct for t in shared)
    only_b = sum(first_b[t].correct and not first_a[t].correct for t in shared)
    neither = len(shared) - both - only_a - only_b
    return {
        "Model A": a.name,
        "Model B": b.name,
        "Tasks": len(shared),
        "Both Correct": both,
        "A Only": only_a,
        "B Only": only_b,
        "Both Wrong": neither,
        "Accuracy A (%)": pct(both + only_a, len(shared)),
        "Accuracy B (%)": pct(both + only_b, len(shared)),
        "Difference (pp)": round(100 * (only_a - only_b) / len(shared), 1) if shared else float("nan"),
        "p-value": mcnemar_exact(only_a, only_b),
    }


def pairwise_comparisons(entries: list[Entry]) -> pd.DataFrame:
    """McNemar for every pair of models, in leaderboard order."""
    return pd.DataFrame([paired_comparison(a, b) for a, b in combinations(entries, 2)])


def adjacent_comparisons(entries: list[Entry]) -> pd.DataFrame:
    """McNemar between each model and the next one down the leaderboard."""
    return pd.DataFrame([paired_comparison(a, b) for a, b in zip(entries, entries[1:])])


SIDE_BY_SIDE_MODES = ("protocol", "grader", "post_mode", "max_rounds", "strip_think", "task_set", "task_set_sha256")


def side_by_side(a: Entry, b: Entry, catalog: Catalog) -> pd.DataFrame:
    """Two runs per task category and overall: accuracy, and the difference in points (A - B)."""
    rows = []
    for category in [*categories([a, b]), "all"]:
        counts = [(e.correct, e.total) if category == "all" else e.category_counts(category) for e in (a, b)]
        scores = [pct(correct, total) for correct, total in counts]
        rows.append(
            {
                "Task": category,
                "Description": "" if category == "all" else catalog.task_label(category),
                f"{a.name} (%)": scores[0],
                f"{b.name} (%)": scores[1],
                "Difference (pp)": round(scores[0] - scores[1], 1),
            }
        )
    return pd.DataFrame(rows)


def run_profiles(a: Entry, b: Entry) -> pd.DataFrame:
    """How the two runs were measured and how they went: modes, outcomes, turns and tokens per attempt."""

    def mean(values: list) -> float | str:
        present = [v for v in values if v is not None]
        return round(statistics.fmean(present), 1) if present else ""

    def column(entry: Entry) -> list[object]:
        records, modes = entry.results.records, entry.results.modes
        shown = [
            str(modes.get(key, "")) if key != "task_set_sha256" else str(modes.get(key, ""))[:12]
            for key in SIDE_BY_SIDE_MODES
        ]
        return [
            *shown,
            entry.total,
            entry.correct,
            entry.status_count(INVALID_ACTION),
            entry.status_count(LIMIT_REACHED),
            mean([r.num_turns for r in records]),
            mean([r.prompt_tokens for r in records]),
            mean([r.completion_tokens for r in records]),
        ]

    labels = [
        *SIDE_BY_SIDE_MODES,
        "attempts",
        "correct",
        "agent_invalid_action",
        "limit_reached",
        "mean turns",
        "mean prompt tokens",
        "mean completion tokens",
    ]
    return pd.DataFrame({"": labels, a.name: column(a), b.name: column(b)})
