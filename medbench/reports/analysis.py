"""Assemble every table for one results directory, and write the CSV and PNG files.

This is the edge where loading, the consistency check, the pure tables and the plots meet;
the CLIs, the report page and the pytest plugin all start here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from medbench.reports import plots, tables
from medbench.reports.consistency import check_consistent
from medbench.reports.load import load_results
from medbench.reports.metadata import Catalog, load_catalog
from medbench.reports.tables import Entry

MAX_GROUPED_MODELS = 6


@dataclass
class Analysis:
    """The loaded field and its tables, keyed by CSV file stem (`leaderboard`, ...)."""

    results_dir: Path
    entries: list[Entry]
    catalog: Catalog
    highlights: list[Entry]
    mode_differences: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def recorded_modes(self) -> pd.DataFrame:
        """Each model's recorded modes side by side (empty cells where not recorded)."""
        keys = sorted({k for e in self.entries for k in e.results.modes})
        rows = [{"Model": e.name, **{k: _plain(e.results.modes.get(k)) for k in keys}} for e in self.entries]
        return pd.DataFrame(rows, columns=["Model", *keys])


def _plain(value: object) -> str:
    return "" if value is None else str(value)


def analyse(
    results_dir: Path,
    highlight: list[str] | tuple[str, ...] = (),
    allow_mixed: bool = False,
    models_file: Path | None = None,
) -> Analysis:
    """Load, check and tabulate a results directory (raises on mixed modes unless allowed)."""
    results_dir = Path(results_dir)
    models = load_results(results_dir)
    differences = check_consistent(models, allow_mixed=allow_mixed)
    catalog = load_catalog(models_file, results_dir)
    if models and all(m.modes.get("benchmark") == "v2" for m in models):
        # MedAgentBench v2 reuses the ids task1..task10 for its own ten categories.
        catalog = replace(catalog, task_labels={**catalog.task_labels, **catalog.v2_task_labels})
    entries = tables.build_entries(models, catalog)
    chosen = [tables.find_entry(entries, name) for name in highlight]
    analysis = Analysis(results_dir, entries, catalog, chosen, differences)
    t = analysis.tables
    t["leaderboard"] = tables.leaderboard(entries)
    t["task_accuracy_matrix"] = tables.task_accuracy_matrix(entries, catalog)
    t["task_intervals"] = tables.task_intervals(entries, catalog)
    t["task_rankings"] = tables.task_rankings(entries, catalog)
    t["model_rankings_per_task"] = tables.model_rankings_per_task(entries)
    t["task_difficulty"] = tables.task_difficulty(entries, catalog)
    t["task_analysis"] = tables.task_analysis(entries, catalog)
    t["failure_breakdown"] = tables.failure_breakdown(entries)
    t["failure_reasons"] = tables.failure_reasons(entries)
    t["pairwise_mcnemar"] = tables.pairwise_comparisons(entries)
    pass_k = tables.pass_k_table(entries)
    if not pass_k.empty:
        t["pass_k"] = pass_k
    if tables.has_efficiency_data(entries):
        t["efficiency"] = tables.efficiency(entries)
    for entry in chosen:
        t[f"{entry.results.file_stem}_comparison"] = tables.model_comparison(entries, entry, catalog)
    return analysis


def write_csvs(analysis: Analysis, out_dir: Path) -> list[Path]:
    """One CSV per table under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in analysis.tables.items():
        path = out_dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def grouped_selection(analysis: Analysis, select: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Models for the grouped-bar plot: those asked for, else highlights plus the top of the board."""
    if select:
        return [tables.find_entry(analysis.entries, s).name for s in select]
    names = [e.name for e in analysis.highlights]
    for entry in analysis.entries:
        if len(names) >= MAX_GROUPED_MODELS:
            break
        if entry.name not in names:
            names.append(entry.name)
    return names


def write_plots(analysis: Analysis, out_dir: Path, select: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """Every figure the data supports, as 300 dpi PNGs under out_dir."""
    t = analysis.tables
    highlight = [e.name for e in analysis.highlights]
    written = [
        plots.plot_leaderboard(t["leaderboard"], highlight, out_dir / "leaderboard.png"),
        plots.plot_task_heatmap(t["task_accuracy_matrix"], out_dir / "task_heatmap.png"),
        plots.plot_task_difficulty(t["task_accuracy_matrix"], t["task_difficulty"], out_dir / "task_difficulty.png"),
        plots.plot_grouped_bars(
            t["task_accuracy_matrix"], grouped_selection(analysis, select), out_dir / "task_grouped_bars.png"
        ),
        plots.plot_failure_breakdown(t["failure_breakdown"], out_dir / "failure_breakdown.png"),
    ]
    for entry in analysis.highlights if len(analysis.entries) > 1 else ():
        written.append(
            plots.plot_model_vs_field(
                t[f"{entry.results.file_stem}_comparison"],
                entry.name,
                out_dir / f"{entry.results.file_stem}_vs_field.png",
            )
        )
    if len(plots.sized_models(t["leaderboard"])) >= 2:
        written.append(
            plots.plot_accuracy_vs_parameters(t["leaderboard"], highlight, out_dir / "accuracy_vs_parameters.png")
        )
    return written
