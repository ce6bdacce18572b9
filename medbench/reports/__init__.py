"""Cross-model analysis of a results directory: CSV tables, PNG plots, terminal tables, report page.

`write_reports` is what `pytest --report` and `python -m medbench.reports report` call.
"""

from __future__ import annotations

from pathlib import Path

from medbench.reports.analysis import Analysis, analyse, write_csvs, write_plots
from medbench.reports.consistency import MixedRunsError
from medbench.reports.load import ReportError, ResultsError
from medbench.reports.metadata import MetadataError
from medbench.reports.report import write_report
from medbench.reports.viewer import has_any_transcripts, write_viewer

__all__ = [
    "Analysis",
    "MetadataError",
    "MixedRunsError",
    "ReportError",
    "ResultsError",
    "analyse",
    "default_out_dir",
    "write_csvs",
    "write_plots",
    "write_reports",
]


def default_out_dir(results_dir: Path) -> Path:
    """`<results>/report/`: inside the results folder, ignored when results are loaded."""
    return Path(results_dir) / "report"


def write_reports(
    results_dir: Path,
    out_dir: Path | None = None,
    highlight: list[str] | tuple[str, ...] = (),
    allow_mixed: bool = False,
    models_file: Path | None = None,
    transcripts: bool = True,
) -> list[Path]:
    """CSVs, plots (in `plots/`), report.md and report.html for every model folder in results_dir.

    With `transcripts` (default) and any transcripts.jsonl recorded, also the transcript viewer
    (transcripts.html and its transcripts/ folder), which the report's tables then link to.

    Raises a ReportError (ResultsError, MixedRunsError, MetadataError, UnknownModelError) whose
    message names what to fix; the pytest plugin should print it rather than fail the session.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(results_dir)
    analysis = analyse(Path(results_dir), highlight=highlight, allow_mixed=allow_mixed, models_file=models_file)
    written = write_csvs(analysis, out_dir)
    plot_paths = write_plots(analysis, out_dir / "plots")
    viewer = write_viewer(analysis, out_dir) if transcripts and has_any_transcripts(analysis) else []
    return written + plot_paths + viewer + write_report(analysis, out_dir, plot_paths, viewer=bool(viewer))
