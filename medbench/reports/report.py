"""The report page: report.md (beside the PNGs) and a self-contained report.html.

Both are rendered from one list of sections so they never disagree; the HTML embeds every
image as base64 so the single file can be mailed or attached to a paper's appendix.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medbench.reports import tables
from medbench.reports.analysis import Analysis
from medbench.reports.viewer import VIEWER_PAGE, viewer_link

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
th.num, td.num { text-align: right; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; }
td a { color: inherit; }
"""

# failure_breakdown column -> the viewer filters behind its count
_FAILURE_FILTERS = {
    "Total": {},
    "Correct": {"verdict": "correct"},
    "Completed Incorrect": {"status": "completed", "verdict": "incorrect"},
    "Invalid Actions": {"status": "agent_invalid_action"},
    "Limit Reached": {"status": "limit_reached"},
    "Context Limit": {"status": "context_limit"},
    "Errors": {"status": "error"},
}
REASONS_PER_MODEL = 10
Links = dict[tuple[int, str], str]


@dataclass(frozen=True)
class Section:
    """A heading with optional text, table and image (path relative to the report folder).

    `links` maps (row position, column) of the table to a URL; only the HTML page shows them.
    """

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    image: str | None = None
    links: Links | None = None


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


def shorten_ties(
    frame: pd.DataFrame, columns: tuple[str, ...] = ("Hardest For", "Easiest For", "Best Model")
) -> pd.DataFrame:
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
        return Section(
            "Run modes",
            "These results record no modes (task set hash, grader, protocol); "
            "they were probably written by the upstream harness.",
        )
    unique = modes.drop(columns="Model").drop_duplicates()
    if len(unique) == 1:
        pairs = ", ".join(f"{k} = {v}" for k, v in unique.iloc[0].items() if v)
        return Section("Run modes", f"Every model was run with: {pairs}.")
    warning = (
        "Runs differ in modes that change accuracy; compare with care:\n" + "\n".join(analysis.mode_differences)
        if analysis.mode_differences
        else "Runs differ in modes that do not affect comparability."
    )
    return Section("Run modes", warning, modes)


def matrix_links(frame: pd.DataFrame, slugs: dict[str, str]) -> Links:
    """Each cell of the per-model task matrix opens that model's attempts in that category."""
    links: Links = {}
    for position, name in enumerate(frame["Model"]):
        for column in frame.columns:
            category = None if column in ("Model", "Overall") else str(column)
            links[(position, str(column))] = viewer_link(slugs[name], category=category)
    return links


def failure_links(frame: pd.DataFrame, slugs: dict[str, str]) -> Links:
    """Each failure row opens the model's incorrect attempts; each count, the attempts it counts."""
    links: Links = {}
    for position, name in enumerate(frame["Model"]):
        links[(position, "Model")] = viewer_link(slugs[name], verdict="incorrect")
        for column, filters in _FAILURE_FILTERS.items():
            links[(position, column)] = viewer_link(slugs[name], **filters)
    return links


def top_failure_reasons(frame: pd.DataFrame, per_model: int = REASONS_PER_MODEL) -> pd.DataFrame:
    """The most frequent (status, grader reason) pairs of each model, as failure_reasons.csv counts them."""
    return frame.groupby("Model", sort=False).head(per_model).reset_index(drop=True)


def reason_links(frame: pd.DataFrame, slugs: dict[str, str]) -> Links:
    """Each failure-reason row opens exactly the attempts with that status and grader's reason."""
    links: Links = {}
    for position, row in frame.iterrows():
        link = viewer_link(slugs[row["Model"]], status=row["Status"], reason=row["Reason"])
        for column in frame.columns:
            links[(int(position), str(column))] = link
    return links


def _viewer_sections(analysis: Analysis) -> list[Section]:
    reasons = top_failure_reasons(analysis.tables["failure_reasons"])
    slugs = {entry.name: entry.results.slug for entry in analysis.entries}
    opening = pd.DataFrame(
        [{"Model": e.name, "Attempts": e.total, "Incorrect": e.total - e.correct} for e in analysis.entries]
    )
    links: Links = {}
    for position, entry in enumerate(analysis.entries):
        links[(position, "Model")] = links[(position, "Attempts")] = viewer_link(entry.results.slug)
        links[(position, "Incorrect")] = viewer_link(entry.results.slug, verdict="incorrect")
    sections = [
        Section(
            "Transcripts",
            f"{VIEWER_PAGE} (next to this page, with its transcripts/ folder) shows every "
            "attempt's conversation, FHIR requests, verdict and grader's reason, with filters, search and "
            "two models side by side. The cells of this table, of the task matrix and of the failure tables "
            "link to the matching transcripts.",
            opening,
            links=links,
        )
    ]
    if not reasons.empty:
        sections.append(
            Section(
                "Failure reasons",
                f"The {REASONS_PER_MODEL} most frequent (status, grader's reason) "
                "pairs per model (all of them in failure_reasons.csv).",
                reasons,
                links=reason_links(reasons, slugs),
            )
        )
    return sections


def report_sections(analysis: Analysis, plot_names: set[str], viewer: bool = False) -> list[Section]:
    """Every section the data supports, in reading order; with `viewer`, tables link to transcripts.html."""
    t = analysis.tables
    board = t["leaderboard"]
    n_models = len(analysis.entries)
    slugs = {entry.name: entry.results.slug for entry in analysis.entries}
    matrix = models_by_task(t["task_accuracy_matrix"])
    sections = [
        Section(
            "medbench report",
            f"{n_models} model(s) from {analysis.results_dir}. "
            "Intervals are Wilson 95% score intervals; ranks are shared on ties.",
        ),
        _modes_section(analysis),
        Section(
            "Leaderboard",
            "Accuracy counts every recorded attempt. 'Missing' counts tasks some other model "
            "attempted but this one did not; a non-zero value means its accuracy is over fewer tasks.",
            board[
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
                    "Missing",
                ]
            ],
            "plots/leaderboard.png",
        ),
    ]
    if n_models > 1:
        sections.append(
            Section(
                "Neighbouring ranks: paired McNemar tests",
                "Each model against the next one down, on the tasks both attempted (first attempt). "
                "A p-value above 0.05 means the two are not distinguishable on these tasks.",
                tables.adjacent_comparisons(analysis.entries),
            )
        )
    sections += [
        Section(
            "Accuracy per task",
            "Accuracy (%) of each model on each task category.",
            matrix,
            "plots/task_heatmap.png",
            matrix_links(matrix, slugs) if viewer else None,
        ),
        Section(
            "Task difficulty",
            "Tasks from hardest to easiest by mean model accuracy (full tie lists in task_difficulty.csv).",
            shorten_ties(t["task_difficulty"]),
            "plots/task_difficulty.png",
        ),
        Section("Selected models per task", image="plots/task_grouped_bars.png"),
    ]
    for entry in analysis.highlights:
        slug = entry.results.file_stem
        sections.append(
            Section(
                f"{entry.name} vs the field",
                "Field average = mean of all other models.",
                shorten_ties(t[f"{slug}_comparison"]),
                f"plots/{slug}_vs_field.png",
            )
        )
    sections.append(
        Section(
            "Format adherence and failures",
            "Where every attempt ended: correct, a wrong answer, or a failure status.",
            t["failure_breakdown"],
            "plots/failure_breakdown.png",
            failure_links(t["failure_breakdown"], slugs) if viewer else None,
        )
    )
    if viewer:
        sections += _viewer_sections(analysis)
    if "pass_k" in t:
        sections.append(
            Section(
                "Repeated attempts: pass@k and pass^k",
                "pass@k: at least one of k attempts correct; pass^k: all k correct.",
                t["pass_k"],
            )
        )
    if "efficiency" in t:
        sections.append(Section("Tokens, latency and cost", "Cost needs prices in the models file.", t["efficiency"]))
    if "accuracy_vs_parameters.png" in plot_names:
        sections.append(
            Section(
                "Accuracy vs parameter count",
                "Models whose parameter label is a count.",
                image="plots/accuracy_vs_parameters.png",
            )
        )
    return [
        s if s.image is None or Path(s.image).name in plot_names else Section(s.title, s.text, s.table, links=s.links)
        for s in sections
    ]


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
            shown = display_frame(section.table)
            body.append(linked_table_html(shown, section.links or {}))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>medbench report</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# A shown value that reads as a number: 95.0, 1,234, 12%, $0.41, or an interval such as 88.7-100.0.
_NUMBER = re.compile(r"^[-+]?\$?[\d.,]+%?(\s*[-\u2013]\s*[\d.,]+%?)?$")


def numeric_columns(frame: pd.DataFrame) -> set[str]:
    """Columns whose every shown value is a number (right-aligned); names, labels and reasons read left-aligned."""
    numeric = set()
    for column in frame.columns:
        shown = [str(value).strip() for value in frame[column] if str(value).strip() not in ("", "nan", "None", "-")]
        if shown and all(_NUMBER.match(value) for value in shown):
            numeric.add(str(column))
    return numeric


def linked_table_html(frame: pd.DataFrame, links: Links) -> str:
    """The table (class "dataframe", as pandas names it), numbers right- and text left-aligned, linked cells as anchors."""
    numeric = numeric_columns(frame)

    def cell(tag: str, column: object, content: str) -> str:
        return f'<{tag} class="num">{content}</{tag}>' if str(column) in numeric else f"<{tag}>{content}</{tag}>"

    head = "".join(cell("th", column, html.escape(str(column))) for column in frame.columns)
    rows = []
    for position, values in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, values):
            text = html.escape(str(value))
            link = links.get((position, str(column)))
            cells.append(cell("td", column, f'<a href="{html.escape(link)}">{text}</a>' if link else text))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="dataframe">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def write_report(analysis: Analysis, out_dir: Path, plot_paths: list[Path], viewer: bool = False) -> list[Path]:
    """report.md and report.html in out_dir; plot_paths must lie in out_dir/plots.

    `viewer`: transcripts.html was written beside them, so the tables link to it.
    """
    sections = report_sections(analysis, {p.name for p in plot_paths}, viewer)
    markdown = out_dir / "report.md"
    markdown.write_text(render_markdown(sections), encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(render_html(sections, out_dir), encoding="utf-8")
    return [markdown, page]
