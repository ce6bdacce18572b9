"""The session owner's end of a benchmark session: summary.json, vanished attempts, gates, reports, terminal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from medbench.results.gates import failed_gates
from medbench.results.resume import reruns_in_session
from medbench.results.summary import model_calls_line, summary_table
from medbench.runner import write_summary
from medbench.settings import Settings

if TYPE_CHECKING:
    from medbench.plugin import PluginState


class Controller:
    """Registered on the session's owner only: watches reports, then writes the summary and applies the gates."""

    def __init__(self, state: PluginState) -> None:
        self.state = state
        self.bench = state.bench
        self.reported: set[str] = set()
        self.failed: set[str] = set()
        self.with_verdict: set[str] = set()
        self.summary: dict[str, Any] | None = None
        self.problems: list[str] = []
        self.gate_failures: list[str] = []
        self.report_lines: list[str] = []
        self.notes: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reported.add(report.nodeid)
        if report.failed:
            self.failed.add(report.nodeid)
        if any(key == "correct" for key, _ in report.user_properties):
            self.with_verdict.add(report.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        """Before other plugins (json-report) read the exit status: summary, vanished attempts, gates."""
        if self.reported and self.bench.started and self.bench.folder.manifest_path.exists():
            self._finish(session)
        return (yield)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary is None:
            return
        summary, write = self.summary, terminalreporter.write_line
        terminalreporter.write_sep("=", "medbench summary")
        write(summary_table(summary))
        low, high = summary["accuracy_ci95"]
        status = (
            "complete"
            if summary["complete"]
            else f"incomplete: {summary['total']} of {summary['expected_total']} attempts"
        )
        write(
            f"accuracy {summary['accuracy']:.1f}% (95% CI {low:.1f}-{high:.1f}) over {summary['total']} attempts, "
            f"run {status}; results in {self.bench.folder.path}"
        )
        repeats = summary["repeats"]
        if repeats["k"] > 1:
            k = repeats["k"]
            write(
                f"repeats: pass@1 {repeats.get('pass@1')}, pass@{k} {repeats.get(f'pass@{k}')}, "
                f"pass^{k} {repeats.get(f'pass^{k}')}"
            )
        for line in self.notes:
            write(f"medbench: {line}")
        for line in self.problems:
            write(f"medbench: {line}", red=True)
        for line in self.gate_failures:
            write(f"GATE FAILED: {line}", red=True)
        gates = self.bench.settings.gates
        if gates and not self.gate_failures:
            write("gates passed: " + ", ".join(g.describe() for g in gates), green=True)
        for line in self.report_lines:
            write(line)

    def _finish(self, session: pytest.Session) -> None:
        started = self.state.run_started or time.monotonic()
        self.summary = write_summary(self.bench, time.monotonic() - started)
        if self.summary is None:
            return
        calls_line = model_calls_line(self.summary)
        self.notes = [calls_line] if calls_line else []
        if self.bench.folder.archive_note:
            self.notes.append(self.bench.folder.archive_note)
        if self.bench.settings.resume:
            reruns = reruns_in_session(self.bench.folder.records(), self.bench.session)
            if reruns:
                self.notes.append(
                    f"--resume ran {reruns} attempt(s) again that had ended as error or cassette_mismatch"
                )
        unrecorded = len(self.failed - self.with_verdict)
        if unrecorded:
            self.problems.append(
                f"{unrecorded} test(s) failed without a recorded verdict (setup error, harness error or crashed worker)"
            )
        vanished = max(session.testscollected - len(self.reported), 0)
        if vanished and session.exitstatus == pytest.ExitCode.OK:
            self.problems.append(
                f"{vanished} collected test(s) never reported a result (a lost worker?); failing the session"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        gates = list(self.bench.settings.gates)
        if gates and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            self.gate_failures = failed_gates(self.summary, gates, unrecorded=unrecorded + vanished)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if self.gate_failures else pytest.ExitCode.OK
        if self.bench.settings.report:
            self.report_lines = _write_report(self.bench.settings)


def _write_report(settings: Settings) -> list[str]:
    """--report: CSVs, plots and the report page for the whole results folder; never fails the session."""
    from medbench import reports

    try:
        paths = reports.write_reports(settings.results_dir, settings.report)
    except reports.ReportError as error:
        return [f"--report skipped: {error}"]
    return [f"report: {path}" for path in paths]
