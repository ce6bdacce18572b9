"""`python -m medbench run`: the benchmark without pytest, with the pytest plugin's own options.

The options are declared once, in `medbench.plugin.options`; here they are registered on an
argparse parser through a small stand-in for pytest's parser, and read back through a stand-in
for pytest's config, so `settings_from_config` validates them exactly as in a pytest session.
The run itself is `medbench.runner.run_benchmark` (no cassettes: those belong to the pytest
session). Exit status as pytest's: 0 when every gate holds, 1 when a gate fails, 4 when the
options or the setup are wrong (one message, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pytest

from medbench.ehr.progress import BuildProgress
from medbench.plugin.options import add_options, option_notes, settings_from_config
from medbench.results.gates import failed_gates
from medbench.results.summary import model_calls_line, summary_table
from medbench.runner import AttemptResult, run_benchmark
from medbench.settings import Settings, SetupError

USAGE_ERROR = 4
GATE_FAILED = 1


class _ArgparseGroup:
    """What `add_options` needs of pytest's parser and option group, on top of argparse."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def getgroup(self, name: str, description: str = "") -> _ArgparseGroup:
        return self

    def addoption(self, *flags: str, **kwargs: Any) -> None:
        self.parser.add_argument(*flags, **kwargs)

    def addini(self, *args: Any, **kwargs: Any) -> None:
        """No ini file outside pytest: the command line, the environment and the defaults remain."""


class _ArgsConfig:
    """What `settings_from_config` and `option_notes` read of a pytest config, from argparse's namespace."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def getoption(self, dest: str) -> Any:
        return getattr(self.args, dest)

    def getini(self, name: str) -> Any:
        return None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_options(_ArgparseGroup(parser))  # type: ignore[arg-type]
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no line per attempt; only the setup messages and the summary"
    )


def run(args: argparse.Namespace) -> int:
    """Validate the options, run every attempt, print the summary, apply the gates and --report."""
    config: Any = _ArgsConfig(args)
    try:
        settings = settings_from_config(config)
    except pytest.UsageError as error:
        print(f"medbench: {error}", file=sys.stderr)
        return USAGE_ERROR
    for note in option_notes(config):
        print(f"medbench: warning: {note}", file=sys.stderr)
    progress = BuildProgress(
        f"medbench: building the synthetic EHR ({settings.ehr_scale} scale, seed {settings.ehr_seed}, cached afterwards)",
        settings.ehr_scale,
    )
    counter = _AttemptLines(quiet=args.quiet)
    try:
        summary = run_benchmark(settings, progress=progress, on_result=counter, on_started=counter.start(progress))
    except SetupError as error:
        progress.finish()
        print(f"medbench: {error}", file=sys.stderr)
        return USAGE_ERROR
    if summary is None:
        print("medbench: no attempt was run, so no summary was written", file=sys.stderr)
        return USAGE_ERROR
    return _report(settings, summary)


class _AttemptLines:
    """One line per finished attempt: `[12/300] task1_12 correct` (or its status)."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.done = 0
        self.total = 0

    def start(self, progress: BuildProgress) -> Any:
        """`on_started`: setup is over, so the EHR build line ends; `total` attempts follow."""

        def started(total: int) -> None:
            progress.finish()
            self.total = total
            if not self.quiet:
                print(f"medbench: running {total} attempt(s)", flush=True)

        return started

    def __call__(self, result: AttemptResult) -> None:
        self.done += 1
        if self.quiet:
            return
        record = result.record or {}
        verdict = "correct" if record.get("correct") else str(record.get("status") or "no record")
        if result.problems:
            verdict += f" ({'; '.join(result.problems)})"
        print(f"[{self.done}/{self.total}] {result.case.test_id} {verdict}", flush=True)


def _report(settings: Settings, summary: dict[str, Any]) -> int:
    print(summary_table(summary))
    low, high = summary["accuracy_ci95"]
    print(
        f"accuracy {summary['accuracy']:.1f}% (95% CI {low:.1f}-{high:.1f}): {summary['correct']} of "
        f"{summary['total']} correct; results in {settings.run_folder}"
    )
    calls = model_calls_line(summary)
    if calls:
        print(f"medbench: {calls}")
    status = 0
    gates = list(settings.gates)
    if gates:
        failures = failed_gates(summary, gates)
        for line in failures:
            print(f"GATE FAILED: {line}")
        if failures:
            status = GATE_FAILED
        else:
            print("gates passed: " + ", ".join(gate.describe() for gate in gates))
    if settings.report:
        from medbench import reports

        try:
            for path in reports.write_reports(settings.results_dir, settings.report):
                print(f"report: {path}")
        except reports.ReportError as error:
            print(f"--report skipped: {error}")
    return status
