"""`python -m medbench.results {merge,gates}`: join the shards of a run, and apply the CI gates to any run folder.

    python -m medbench.results merge shards/1/reference shards/2/reference shards/3/reference --out results/reference
    python -m medbench.results gates results/reference --min-accuracy 0.9 --min-task-accuracy task5=0.8

`merge` refuses (exit 2, nothing written) folders that are not the parts of one run, naming the
difference. `gates` exits 1 when a gate does not hold (or the run is incomplete), as a gated
pytest session does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from medbench.results.gates import Gate, GateSpecError, failed_gates, parse_task_gate, parse_threshold
from medbench.results.merge import MergeRefused, merge_runs
from medbench.results.summary import summary_table
from medbench.results.writer import SUMMARY_FILE

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m medbench.results` (the job-file tests check commands against it)."""
    parser = argparse.ArgumentParser(
        prog="python -m medbench.results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge", help="merge the shard folders of one run (or runs of one identity) into one run folder"
    )
    merge.add_argument(
        "folders", nargs="+", type=Path, metavar="FOLDER", help="run folders (each holding run.json and runs.jsonl)"
    )
    merge.add_argument("--out", type=Path, required=True, help="the merged run folder to write (must hold no run)")
    gates = commands.add_parser("gates", help="apply CI gates to a run folder's summary.json; exit 1 when one fails")
    gates.add_argument("folder", type=Path, metavar="FOLDER", help="a run folder (holding summary.json)")
    gates.add_argument("--min-accuracy", metavar="X", help="overall accuracy at least X (0.9 or 90%%)")
    gates.add_argument(
        "--min-task-accuracy",
        action="append",
        default=[],
        metavar="taskN=X",
        help="accuracy of one category at least X, repeatable (task5=0.8)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "merge":
        return _merge(args.folders, args.out)
    try:
        chosen = [Gate(None, parse_threshold(args.min_accuracy))] if args.min_accuracy else []
        chosen += [parse_task_gate(text) for text in args.min_task_accuracy]
    except GateSpecError as error:
        parser.error(str(error))
    if not chosen:
        parser.error("name at least one gate: --min-accuracy X or --min-task-accuracy taskN=X")
    return _gates(args.folder, chosen)


def _merge(folders: list[Path], out: Path) -> int:
    try:
        result = merge_runs(folders, out)
    except MergeRefused as error:
        print(f"merge refused: {error}", file=sys.stderr)
        return USAGE_ERROR
    summary = result.summary
    shards = f" (shards {', '.join(result.shards)})" if result.shards else ""
    print(
        f"merged {len(result.parts)} folder(s){shards} into {result.out}: {summary['total']} attempts, "
        f"accuracy {summary['accuracy']:.1f}%, run {'complete' if summary['complete'] else 'incomplete'}"
    )
    print(summary_table(summary))
    return 0


def _gates(folder: Path, chosen: list[Gate]) -> int:
    path = folder / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"gates: cannot read {path} ({error}); name a run folder holding summary.json", file=sys.stderr)
        return USAGE_ERROR
    shard = summary.get("shard")
    if shard:
        print(
            f"gates: {folder} holds shard {shard.get('index')}/{shard.get('count')} of a run, not the run; "
            "merge the shards first (python -m medbench.results merge ... --out FOLDER) and gate the merged folder",
            file=sys.stderr,
        )
        return USAGE_ERROR
    failures = failed_gates(summary, chosen)
    if not summary.get("complete"):  # a --task-id run never is; the gates judge what was recorded, as in pytest
        print(f"note: {summary.get('total')} of {summary.get('expected_total')} attempts of the task set recorded")
    for line in failures:
        print(f"GATE FAILED: {line}")
    if failures:
        return 1
    print(
        "gates passed: "
        + ", ".join(gate.describe() for gate in chosen)
        + f" ({summary['correct']}/{summary['total']} correct, accuracy {summary['accuracy']:.1f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
