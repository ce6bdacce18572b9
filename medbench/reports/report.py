"""The report page: report.md (beside the PNGs) and a self-contained report.html.

Both are rendered from one list of sections so they never disagree; the HTML embeds every
image as base64 so the single file can be mailed or attached to a paper's appendix.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medbench.reports import tables
from medbench.reports.analysis import Analysis

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; }
"""


@dataclass(frozen=True)
class Section:
    """A heading with optional text, table and image (path relative to the report folder)."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    image: str | None = None


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Strings for humans: one decimal for percentages, 4 significant digits for p-values and costs."""
    shown = frame.copy().astype(object)
    for column in shown.columns:
        shown[column] = [_format(value, _number_format(str(column))) for value in shown[column]]
    return shown


def _number_format(column: str) -> str:
    if column == "p-value" or "(USD)" in column:
        return "{:.4g}"
    if column.endswith("(s)"):
        return "{:.2f}"
    return "{:.1f}"


def models_by_task(matrix: pd.DataFrame) -> pd.DataFrame:
    """The task accuracy matrix turned to one row per model, which reads better on a page."""
    turned = matrix.drop(columns="Description").set_index("Task").T
    turned.columns.name = None
    return turned.rename_axis("Model").reset_index()


def shorten_ties(frame: pd.DataFrame, columns: tuple[str, ...] = ("Hardest For", "Easiest For", "Best Model")) -> pd.DataFrame:
    """`A; B; C; D` -> `A + 3 more`, so long tie lists do not blow up a printed table."""
    shown = frame.copy()
    for column in columns:
        if column in shown.columns:
            shown[column] = [_first_and_count(str(cell)) for cell in shown[column]]
    return shown


def _first_and_count(cell: str) -> str:
    names = cell.split("; ")
    return cell if len(names) <= 2 else f"{names[0]} + {len(names) - 1} more"


def _format(value: object, digits: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return digits.format(value)
    return str(value)


def _modes_section(analysis: Analysis) -> Section:
    modes = analysis.recorded_modes()
    if len(modes.columns) == 1:
        return Section("Run modes", "These results record no modes (task set hash, grader, protocol); "
                       "they were probably written by the upstream harness.")
    unique = modes.drop(columns="Model").drop_duplicates()
    if len(unique) == 1:
        pairs = ", ".join(f"{k} = {v}" for k, v in unique.iloc[0].items() if v)
        return Section("Run modes", f"Every model was run with: {pairs}.")
    warning = ("Runs differ in modes that change accuracy; compare with care:\n" + "\n".join(analysis.mode_differences)
               if analysis.mode_differences else "Runs differ in modes that do not affect comparability.")
    return Section("Run modes", warning, modes)


def report_sections(analysis: Analysis, plot_names: set[str]) -> list[Section]:
    """Every section the data supports, in reading order."""
    t = analysis.tables
    board = t["leaderboard"]
    n_models = len(analysis.entries)
    sections = [
        Section("medbench report", f"{n_models} model(s) from {analysis.results_dir}. "
                "Intervals are Wilson 95% score intervals; ranks are shared on ties."),
        _modes_section(analysis),
        Section("Leaderboard", "Accuracy counts every recorded attempt. 'Missing' counts tasks some other model "
                "attempted but this one did not; a non-zero value means its accuracy is over fewer tasks.",
                board[["Rank", "Model", "Parameters", "Accuracy (%)", "CI Low (%)", "CI High (%)", "Correct", "Total",
                       "Invalid Actions", "Missing"]], "plots/leaderboard.png"),
    ]
    if n_models > 1:
        sections.append(Section(
            "Neighbouring ranks: paired McNemar tests",
            "Each model against the next one down, on the tasks both attempted (first attempt). "
            "A p-value above 0.05 means the two are not distinguishable on these tasks.",
            tables.adjacent_comparisons(analysis.entries)))
    sections += [
        Section("Accuracy per task", "Accuracy (%) of each model on each task category.",
                models_by_task(t["task_accuracy_matrix"]), "plots/task_heatmap.png"),
        Section("Task difficulty", "Tasks from hardest to easiest by mean model accuracy (full tie lists in task_difficulty.csv).",
                shorten_ties(t["task_difficulty"]), "plots/task_difficulty.png"),
        Section("Selected models per task", image="plots/task_grouped_bars.png"),
    ]
    for entry in analysis.highlights:
        slug = entry.results.file_stem
        sections.append(Section(f"{entry.name} vs the field", "Field average = mean of all other models.",
                                shorten_ties(t[f"{slug}_comparison"]), f"plots/{slug}_vs_field.png"))
    sections.append(Section("Format adherence and failures",
                            "Where every attempt ended: correct, a wrong answer, or a failure status.",
                            t["failure_breakdown"], "plots/failure_breakdown.png"))
    if "pass_k" in t:
        sections.append(Section("Repeated attempts: pass@k and pass^k",
                                "pass@k: at least one of k attempts correct; pass^k: all k correct.", t["pass_k"]))
    if "efficiency" in t:
        sections.append(Section("Tokens, latency and cost", "Cost needs prices in the models file.", t["efficiency"]))
    if "accuracy_vs_parameters.png" in plot_names:
        sections.append(Section("Accuracy vs parameter count", "Models whose parameter label is a count.",
                                image="plots/accuracy_vs_parameters.png"))
    return [s if s.image is None or Path(s.image).name in plot_names else Section(s.title, s.text, s.table)
            for s in sections]


def render_markdown(sections: list[Section]) -> str:
    parts = []
    for level, section in enumerate(sections):
        parts.append(("# " if level == 0 else "## ") + section.title)
        if section.text:
            parts.append(section.text)
        if section.image:
            parts.append(f"![{section.title}]({section.image})")
        if section.table is not None and not section.table.empty:
            parts.append(display_frame(section.table).to_markdown(index=False, disable_numparse=True))
    return "\n\n".join(parts) + "\n"


def render_html(sections: list[Section], base_dir: Path) -> str:
    """One HTML document with the images inlined (base_dir resolves the image paths)."""
    body = []
    for level, section in enumerate(sections):
        tag = "h1" if level == 0 else "h2"
        body.append(f"<{tag}>{html.escape(section.title)}</{tag}>")
        if section.text:
            body.append("".join(f'<p class="note">{html.escape(line)}</p>' for line in section.text.splitlines()))
        if section.image:
            data = base64.b64encode((base_dir / section.image).read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(section.title)}" src="data:image/png;base64,{data}">')
        if section.table is not None and not section.table.empty:
            body.append(display_frame(section.table).to_html(index=False, border=0))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>medbench report</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(analysis: Analysis, out_dir: Path, plot_paths: list[Path]) -> list[Path]:
    """report.md and report.html in out_dir; plot_paths must lie in out_dir/plots."""
    sections = report_sections(analysis, {p.name for p in plot_paths})
    markdown = out_dir / "report.md"
    markdown.write_text(render_markdown(sections), encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(render_html(sections, out_dir), encoding="utf-8")
    return [markdown, page]
