"""Command line for the reports: `python -m medbench.reports {csv,plots,analyze,report,export-traces,agreement}`.

scripts/generate_csvs.py, scripts/visualize_benchmarks.py and scripts/analyze_benchmarks.py run one command each
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
from medbench.reports.consistency import check_comparable_pair
from medbench.reports.load import ReportError
from medbench.reports.plain_text import format_analysis, format_comparison
from medbench.reports.tables import find_entry
from medbench.reports.traces import ExportOptions, export_traces

DESCRIPTIONS = {
    "csv": "Write the analysis tables as CSV files.",
    "plots": "Write the figures as 300 dpi PNG files.",
    "analyze": "Print the analysis tables, or compare two models with --compare A B.",
    "report": "Write CSVs, plots, report.md, a self-contained report.html and the transcript viewer.",
    "agreement": "Compare a --grader=state run's verdicts with the transcript graders' and say why they differ.",
}
EXPORT_DESCRIPTION = (
    "Write recorded attempts as chat-format JSONL for fine-tuning (OpenAI, Hugging Face TRL), "
    "with a provenance file beside it. Refuses attempts of the official test set."
)


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS",
        help="run folders (holding runs.jsonl) or results folders of model folders",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="the JSONL file to write (provenance: <name>.provenance.json)"
    )
    parser.add_argument(
        "--with-incorrect",
        action="store_true",
        help="also export incorrect attempts, each line with task_id, model and its verdict (preference data)",
    )
    parser.add_argument(
        "--one-per-task",
        action="store_true",
        help="one attempt per task: the first correct one (the first of any verdict with --with-incorrect)",
    )
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="TASKN",
        help="only this task category (task1 ... task10); repeatable",
    )
    parser.add_argument(
        "--allow-test-set",
        action="store_true",
        help="export even attempts of the official test set or copies of its instructions (not for training)",
    )
    parser.add_argument(
        "--official-dir",
        type=Path,
        default=None,
        help="official assets for the test-set check (default: $MEDBENCH_OFFICIAL_DIR, cache, download)",
    )


def _add_options(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "agreement":
        parser.add_argument(
            "paths",
            type=Path,
            nargs="+",
            metavar="RUN_OR_RESULTS_DIR",
            help="a state run's folder (holding runs.jsonl), or a results directory",
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
        return
    parser.add_argument("results_dir", type=Path, help="folder holding one <model_slug>/runs.jsonl folder per model")
    if command == "analyze":
        parser.add_argument(
            "--task-csv",
            action="store_true",
            help="also write task_analysis.csv (per-task accuracy of every model) into --out",
        )
    if command != "agreement":
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="output folder (default: <results_dir>/report; plots go to its plots/ subfolder)",
        )
    parser.add_argument(
        "--highlight",
        action="append",
        default=[],
        metavar="MODEL",
        help="model (folder slug, model name or display name) to compare with the field; repeatable",
    )
    parser.add_argument(
        "--models-file",
        type=Path,
        default=None,
        help="model metadata TOML (default: <results_dir>/models.toml, else medbench/data/models.toml)",
    )
    parser.add_argument(
        "--allow-mixed",
        action="store_true",
        help="compare runs even if their task-set hash, grader mode or protocol differ",
    )
    if command == "plots":
        parser.add_argument(
            "--select",
            action="append",
            default=[],
            metavar="MODEL",
            help="model for the grouped per-task bars; repeatable (default: highlights, then the top)",
        )
    if command == "report":
        parser.add_argument(
            "--no-transcripts",
            action="store_true",
            help="skip the transcript viewer (transcripts.html and its transcripts/ folder)",
        )
    if command == "analyze":
        parser.add_argument(
            "--compare",
            nargs=2,
            metavar=("A", "B"),
            help="two runs side by side (modes, per-task accuracy) and their paired McNemar exact test; "
            "their protocols may differ (text vs tools), their task set and grader must agree "
            "unless --allow-mixed",
        )


def build_parser(command: str | None = None, prog: str | None = None) -> argparse.ArgumentParser:
    """One command's parser (for the scripts), or the parser with all four subcommands."""
    if command is not None:
        parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTIONS[command])
        _add_options(parser, command)
        parser.set_defaults(command=command)
        return parser
    parser = argparse.ArgumentParser(
        prog="python -m medbench.reports", description="Cross-model analysis of a medbench results directory."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, description in DESCRIPTIONS.items():
        _add_options(sub.add_parser(name, help=description, description=description), name)
    _add_export_options(sub.add_parser("export-traces", help=EXPORT_DESCRIPTION, description=EXPORT_DESCRIPTION))
    return parser


def _load(args: argparse.Namespace) -> Analysis:
    return analyse(
        args.results_dir, highlight=args.highlight, allow_mixed=args.allow_mixed, models_file=args.models_file
    )


def _export(args: argparse.Namespace) -> list[Path]:
    options = ExportOptions(
        with_incorrect=args.with_incorrect,
        one_per_task=args.one_per_task,
        categories=tuple(args.category),
        allow_test_set=args.allow_test_set,
    )
    result = export_traces(args.results, args.out, options, official_dir=args.official_dir)
    print(f"{result.lines} trace(s) written", file=sys.stderr)
    return [result.traces, result.provenance]


def _run(args: argparse.Namespace) -> list[Path] | str:
    if args.command == "export-traces":
        return _export(args)
    if args.command == "agreement":
        return agreement_report(args.paths, as_json=args.json)
    out = getattr(args, "out", None) or default_out_dir(args.results_dir)
    if args.command == "report":
        return write_reports(
            args.results_dir,
            out,
            highlight=args.highlight,
            allow_mixed=args.allow_mixed,
            models_file=args.models_file,
            transcripts=not args.no_transcripts,
        )
    if getattr(args, "compare", None):
        return _compare(args)
    analysis = _load(args)
    if args.command == "csv":
        return write_csvs(analysis, out)
    if args.command == "plots":
        return write_plots(analysis, out / "plots", select=args.select)
    text = format_analysis(analysis)
    if getattr(args, "task_csv", False):
        out.mkdir(parents=True, exist_ok=True)
        path = out / "task_analysis.csv"
        analysis.tables["task_analysis"].to_csv(path, index=False)
        text += f"\ntask analysis written to {path}\n"
    return text


def _compare(args: argparse.Namespace) -> str:
    """`analyze --compare A B`: only the two runs must be comparable, and their protocols may differ."""
    analysis = analyse(args.results_dir, highlight=args.highlight, allow_mixed=True, models_file=args.models_file)
    first, second = (find_entry(analysis.entries, name) for name in args.compare)
    check_comparable_pair(first.results, second.results, allow_mixed=args.allow_mixed)
    return format_comparison(analysis, first.results.slug, second.results.slug)


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
