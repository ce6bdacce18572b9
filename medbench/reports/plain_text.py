"""Plain-text analysis for the terminal: the report's tables through tabulate."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from medbench.reports import tables
from medbench.reports.analysis import Analysis
from medbench.reports.report import display_frame, models_by_task, shorten_ties


def format_table(title: str, frame: pd.DataFrame) -> str:
    shown = display_frame(frame)
    return f"{title}\n{'=' * len(title)}\n" + tabulate(
        shown.values.tolist(), headers=list(shown.columns), tablefmt="simple", disable_numparse=True
    )


def format_analysis(analysis: Analysis) -> str:
    """Leaderboard, per-task accuracy, difficulty, failures, and whatever else was recorded."""
    t = analysis.tables
    board = t["leaderboard"][
        [
            "Rank",
            "Model",
            "Parameters",
            "Accuracy (%)",
            "CI Low (%)",
            "CI High (%)",
            "Correct",
            "Total",
            "Invalid Actions",
            "Limit Reached",
            "Errors",
            "Missing",
        ]
    ]
    blocks = [format_table("Leaderboard (Wilson 95% interval)", board)]
    if analysis.mode_differences:
        blocks.append(
            "WARNING: runs measured differently (--allow-mixed):\n  " + "\n  ".join(analysis.mode_differences)
        )
    blocks.append(format_table("Accuracy per task (%)", models_by_task(t["task_accuracy_matrix"])))
    blocks.append(format_table("Task difficulty (hardest first)", shorten_ties(t["task_difficulty"])))
    blocks.append(format_table("Outcome of every attempt", t["failure_breakdown"]))
    if len(analysis.entries) > 1:
        blocks.append(
            format_table(
                "Neighbouring ranks (McNemar exact, first attempts)", tables.adjacent_comparisons(analysis.entries)
            )
        )
    if "pass_k" in t:
        blocks.append(format_table("pass@k and pass^k", t["pass_k"]))
    if "efficiency" in t:
        blocks.append(format_table("Tokens, latency and cost", t["efficiency"]))
    for entry in analysis.highlights:
        blocks.append(
            format_table(f"{entry.name} vs the field", shorten_ties(t[f"{entry.results.file_stem}_comparison"]))
        )
    return "\n\n".join(blocks) + "\n"


def format_comparison(analysis: Analysis, first: str, second: str) -> str:
    """Two runs side by side (modes, per-task accuracy) and the paired McNemar test, with a one-line reading."""
    a = tables.find_entry(analysis.entries, first)
    b = tables.find_entry(analysis.entries, second)
    row = tables.paired_comparison(a, b)
    p_value = float(row["p-value"])
    verdict = (
        "the difference is significant at the 5% level"
        if p_value < 0.05
        else "the difference is not significant at the 5% level"
    )
    blocks = [
        format_table(f"{a.name} and {b.name}", tables.run_profiles(a, b)),
        format_table("Accuracy per task (%)", tables.side_by_side(a, b, analysis.catalog)),
        format_table(f"{a.name} vs {b.name} (McNemar exact test, first attempts)", pd.DataFrame([row])),
    ]
    return (
        "\n\n".join(blocks) + f"\n\n{a.name} alone solved {row['A Only']} task(s), {b.name} alone {row['B Only']}; "
        f"p = {p_value:.4g}: {verdict}.\n"
    )
