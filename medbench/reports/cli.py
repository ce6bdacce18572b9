"""Command line for the reports: `python -m medbench.reports {csv,plots,analyze,report,agreement}`.

scripts/generate_csvs.py, scripts/visualize.py and scripts/analyze.py run one command each
through `main(argv, command=...)`, so both entry points share options and behaviour.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from medbench.reports import default_out_dir, write_reports
from medbench.reports.agreement import agreement_report
from medbench.reports.analysis import Analysis, analyse, write_csvs, write_plots
from medbench.reports.load import ReportError
from medbench.reports.terminal import format_analysis, format_comparison

DESCRIPTIONS = {
    "csv": "Write the analysis tables as CSV files.",
    "plots": "Write the figures as 300 dpi PNG files.",
    "analyze": "Print the analysis tables, or compare two models with --compare A B.",
    "report": "Write CSVs, plots, report.md and a self-contained report.html.",
    "agreement": "Compare a --grader=state run's verdicts with the transcript graders' and say why they differ.",
}


def _add_options(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "agreement":
        parser.add_argument("paths", type=Path, nargs="+", metavar="RUN_OR_RESULTS_DIR",
                            help="a state run's folder (holding runs.jsonl), or a results directory")
        parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
        return
    parser.add_argument("results_dir", type=Path, help="folder holding one <model_slug>/runs.jsonl folder per model")
    if command != "analyze":
        parser.add_argument("--out", type=Path, default=None,
                            help="output folder (default: <results_dir>/report; plots go to its plots/ subfolder)")
    parser.add_argument("--highlight", action="append", default=[], metavar="MODEL",
                        help="model (folder slug, model name or display name) to compare with the field; repeatable")
    parser.add_argument("--models-file", type=Path, default=None,
                        help="model metadata TOML (default: <results_dir>/models.toml, else fixtures/models.toml)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="compare runs even if their task-set hash, grader mode or protocol differ")
    if command == "plots":
        parser.add_argument("--select", action="append", default=[], metavar="MODEL",
                            help="model for the grouped per-task bars; repeatable (default: highlights, then the top)")
    if command == "analyze":
        parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                            help="paired McNemar exact test between two models on their shared tasks")


def build_parser(command: str | None = None, prog: str | None = None) -> argparse.ArgumentParser:
    """One command's parser (for the scripts), or the parser with all four subcommands."""
    if command is not None:
        parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTIONS[command])
        _add_options(parser, command)
        parser.set_defaults(command=command)
        return parser
    parser = argparse.ArgumentParser(prog="python -m medbench.reports",
                                     description="Cross-model analysis of a medbench results directory.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, description in DESCRIPTIONS.items():
        _add_options(sub.add_parser(name, help=description, description=description), name)
    return parser


def _load(args: argparse.Namespace) -> Analysis:
    return analyse(args.results_dir, highlight=args.highlight, allow_mixed=args.allow_mixed,
                   models_file=args.models_file)


def _run(args: argparse.Namespace) -> list[Path] | str:
    if args.command == "agreement":
        return agreement_report(args.paths, as_json=args.json)
    out = getattr(args, "out", None) or default_out_dir(args.results_dir)
    if args.command == "report":
        return write_reports(args.results_dir, out, highlight=args.highlight, allow_mixed=args.allow_mixed,
                             models_file=args.models_file)
    analysis = _load(args)
    if args.command == "csv":
        return write_csvs(analysis, out)
    if args.command == "plots":
        return write_plots(analysis, out / "plots", select=args.select)
    if args.compare:
        return format_comparison(analysis, *args.compare)
    return format_analysis(analysis)


def main(argv: Sequence[str] | None = None, command: str | None = None, prog: str | None = None) -> int:
    """Run one command; errors in the inputs print one line naming the fix and exit 2."""
    args = build_parser(command, prog).parse_args(argv)
    try:
        outcome = _run(args)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if isinstance(outcome, str):
        print(outcome, end="")
    else:
        for path in outcome:
            print(path)
    return 0
