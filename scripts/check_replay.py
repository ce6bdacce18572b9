"""Replay the shipped cassettes and check the verdicts equal the recorded run's (the CI replay job).

    python scripts/check_replay.py                 # replay cassettes/reference, compare, exit 0/1
    python scripts/check_replay.py -n 2            # the same under xdist
    python scripts/check_replay.py --run-name tools  # replay cassettes/reference/tools (the tools-mode recording)
    python scripts/check_replay.py --run-name v2     # replay cassettes/reference/v2 (MedAgentBench v2, generated-v2)
    python scripts/check_replay.py --save results  # after recording: store results/reference's
                                                   # summary.json and verdicts.json next to the cassettes

A replay runs `pytest tests_bench --model=MODEL --record-mode=none` into a scratch results
folder, so it never touches the network or the user's results. The modes that decide the
conversation (protocol, grader, post mode, max rounds) are read from the cassettes' manifest, so
a tools-mode recording replays with `--protocol=tools`. Compared: every task's status and
verdict, and the summary's counts, per-category breakdown and accuracy (not timings).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMPARED_SUMMARY_FIELDS = (
    "model",
    "total",
    "completed",
    "correct",
    "invalid_action",
    "limit_reached",
    "context_limit",
    "error",
    "task_breakdown",
    "accuracy",
    "status_counts",
)


def verdicts(run_folder: Path) -> dict[str, dict[str, Any]]:
    """`{"task5_3#1": {"status": ..., "correct": ...}}` from runs.jsonl (the last line per attempt wins)."""
    found: dict[str, dict[str, Any]] = {}
    for line in (run_folder / "runs.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        found[f"{record['task_id']}#{record.get('attempt', 1)}"] = {
            "status": record["status"],
            "correct": record["correct"],
        }
    return dict(sorted(found.items()))


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: summary.get(key) for key in COMPARED_SUMMARY_FIELDS}


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [
        f"{key}: recorded {expected.get(key)!r}, replayed {actual.get(key)!r}"
        for key in sorted(set(expected) | set(actual))
        if expected.get(key) != actual.get(key)
    ]


def guard_errors(report: Path) -> list[str]:
    """Tests that errored (a missing, unplayed or diverged cassette) even where the verdict matched."""
    tests = json.loads(report.read_text(encoding="utf-8")).get("tests", [])
    return [
        f"{test['nodeid']}: {test[stage].get('longrepr', '')[:300]}"
        for test in tests
        for stage in ("setup", "teardown")
        if test.get(stage, {}).get("outcome") == "failed"
    ]


# pytest options of the modes a manifest's identity records (replayed as recorded).
MANIFEST_OPTIONS = {
    "protocol": "--protocol",
    "grader": "--grader",
    "post_mode": "--post-mode",
    "max_rounds": "--max-rounds",
}


def recorded_options(folder: Path) -> list[str]:
    """The pytest options that give a replay the recorded modes (none when there is no manifest)."""
    path = folder / "manifest.json"
    identity = json.loads(path.read_text(encoding="utf-8")).get("identity", {}) if path.exists() else {}
    if identity.get("v2_modes"):
        # A MedAgentBench v2 recording: its task set fixes the protocol and post mode; the task
        # set and EHR scale are what the replay must name.
        environment = identity.get("environment") or {}
        options = [f"--tasks={identity['task_set']}", f"--grader={identity.get('grader', 'official')}"]
        options += [f"--max-rounds={identity['max_rounds']}"] if identity.get("max_rounds") else []
        options += [f"--ehr-scale={environment['ehr_scale']}"] if environment.get("ehr_scale") else []
        verdicts_file = folder / "verdicts.json"
        if verdicts_file.exists():
            # The v2 recording holds a selection of the task set (to keep its size moderate): replay those.
            ids = sorted({key.split("#", 1)[0] for key in json.loads(verdicts_file.read_text(encoding="utf-8"))})
            options.append(f"--task-id={','.join(ids)}")
        summary_file = folder / "summary.json"
        summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.exists() else {}
        anchor = (summary.get("modes") or {}).get("v2_task1_anchor")
        if anchor and anchor != "the task's now":
            options.append(f"--v2-task1-anchor={anchor}")  # task1's official verdicts as recorded
        return options
    return [f"{flag}={identity[key]}" for key, flag in MANIFEST_OPTIONS.items() if identity.get(key) is not None]


def save(results_dir: Path, model_slug: str, cassettes: Path, run_name: str | None = None) -> None:
    run_folder, target = results_dir / model_slug, cassettes / model_slug
    if run_name:
        run_folder, target = run_folder / run_name, target / run_name
    summary = json.loads((run_folder / "summary.json").read_text(encoding="utf-8"))
    first = (run_folder / "runs.jsonl").read_text(encoding="utf-8").splitlines()[:1]
    anchor = (json.loads(first[0]).get("modes") or {}).get("v2_task1_anchor") if first else None
    if anchor:
        summary.setdefault("modes", {})["v2_task1_anchor"] = anchor  # what a replay must anchor task1 to
    (target / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    rows = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in verdicts(run_folder).items()]
    (target / "verdicts.json").write_text("{\n" + ",\n".join(rows) + "\n}\n", encoding="utf-8")
    print(f"saved {target / 'summary.json'} and {target / 'verdicts.json'} ({summary['total']} attempts)")


def check(model: str, model_slug: str, cassettes: Path, workers: int | None, run_name: str | None = None) -> int:
    expected_folder = cassettes / model_slug / run_name if run_name else cassettes / model_slug
    with tempfile.TemporaryDirectory(prefix="medbench-replay-") as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "tests_bench",
            f"--model={model}",
            "--record-mode=none",
            f"--cassettes-dir={cassettes}",
            f"--results-dir={scratch}",
            "-q",
            "-p",
            "no:cacheprovider",
            "--json-report",
            f"--json-report-file={report}",
            *recorded_options(expected_folder),
        ]
        if run_name:
            command.append(f"--run-name={run_name}")
        if workers:
            command += ["-n", str(workers)]
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        print(completed.stdout[-1500:], end="")
        run_folder = Path(scratch) / model_slug / run_name if run_name else Path(scratch) / model_slug
        if not (run_folder / "summary.json").exists():
            print(completed.stderr[-3000:], file=sys.stderr)
            print(f"replay wrote no summary (pytest exited {completed.returncode})", file=sys.stderr)
            return 1
        problems = differences(
            json.loads((expected_folder / "verdicts.json").read_text(encoding="utf-8")), verdicts(run_folder)
        )
        problems += guard_errors(report)
        problems += differences(
            comparable(json.loads((expected_folder / "summary.json").read_text(encoding="utf-8"))),
            comparable(json.loads((run_folder / "summary.json").read_text(encoding="utf-8"))),
        )
    if problems:
        print(f"replay of {expected_folder} differs from the recorded run:", file=sys.stderr)
        for line in problems[:50]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"replay of {expected_folder} matches the recorded run (statuses, verdicts, summary counts)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="reference")
    parser.add_argument("--cassettes-dir", type=Path, default=ROOT / "cassettes")
    parser.add_argument("-n", dest="workers", type=int, default=None, help="xdist workers for the replay")
    parser.add_argument(
        "--run-name",
        default=None,
        metavar="NAME",
        help="the recording in cassettes/<model>/<NAME>/ (e.g. tools, the tools-mode recording)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        metavar="RESULTS_DIR",
        help="store the recorded run's summary and verdicts next to the cassettes instead of checking",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from medbench.settings import slug

    cassettes = args.cassettes_dir.resolve()
    run_name = slug(args.run_name) if args.run_name else None
    if args.save:
        save(args.save, slug(args.model), cassettes, run_name)
        return 0
    return check(args.model, slug(args.model), cassettes, args.workers, run_name)


if __name__ == "__main__":
    sys.exit(main())
