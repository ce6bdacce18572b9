"""What the plugin prints while a session runs: model-call retry lines and the EHR build's progress."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from medbench.ehr.progress import BuildProgress
from medbench.plugin import xdist
from medbench.settings import Settings


class CallEventLines:
    """The retry / timeout lines of an attempt's model calls (medbench.models.call_events).

    Printed as they happen when the attempt runs in the thread of a process that owns the
    terminal; otherwise when its test ends -- an xdist worker ships them with the test report
    (user property `medbench_call_events`) and the controller prints them."""

    NAME = "medbench-call-events"
    PROPERTY = "medbench_call_events"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = xdist.is_worker(config)

    @property
    def live(self) -> Any:
        return None if self.is_worker else self._write

    def attempt_ended(self, node: pytest.Item, result: Any) -> None:
        if not result.call_events or result.events_shown:
            return
        if self.is_worker:
            node.user_properties.append((self.PROPERTY, result.call_events))
        else:
            for line in result.call_events:
                self._write(line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "setup" or self.is_worker:  # the attempt runs in the setup of its test
            return
        for key, lines in report.user_properties:
            if key == self.PROPERTY:
                for line in lines:
                    self._write(line)

    def _write(self, line: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if terminal is None:
            return
        with capture.global_and_fixture_disabled() if capture else nullcontext():  # not into the test's capture
            terminal.ensure_newline()
            if getattr(getattr(terminal, "_tw", None), "width_of_current_line", 0):  # after xdist's progress dots
                terminal.write("\n")
            terminal.write_line(f"medbench: {line}")


def build_progress(config: pytest.Config, settings: Settings) -> BuildProgress:
    """The EHR build's progress line on this session's terminal (see medbench.ehr.progress)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    label = f"medbench: building the synthetic EHR ({settings.ehr_scale} scale, seed {settings.ehr_seed}, cached afterwards)"
    return BuildProgress(label, settings.ehr_scale, write_line=reporter.write_line if reporter is not None else None)
