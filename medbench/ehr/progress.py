"""The EHR build's progress line: written count of an expected total, percentage, rate and time left.

A full-scale build writes about 700,000 resources and takes most of a minute on a laptop; a
silent minute looks like a hang. The total is an estimate per scale (the exact count is only
known once the generator has run), so the line says "about" and never claims 100% before the
build reports that it is done. On a terminal the line is rewritten in place and ended with a
newline when the build finishes, so the next line (pytest's status) never overwrites it; in CI
(no terminal) one line is printed every ten seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# Resources written per scale (seed 0, `python -m medbench.ehr stats --scale NAME`); other seeds
# and seatings differ by a few percent, hence "about".
EXPECTED_RESOURCES = {"small": 7_700, "medium": 73_000, "full": 712_600}


class BuildProgress:
    """A callable `progress(count)` for `ensure_database`; call `finish()` once the build returned."""

    def __init__(
        self,
        label: str,
        scale: str,
        *,
        stream: TextIO | None = None,
        write_line: Callable[[str], None] | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.expected = EXPECTED_RESOURCES.get(scale)
        self.stream = stream if stream is not None else sys.stderr
        self.write_line = write_line
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.clock = clock
        self.started = clock()
        self.last_shown = float("-inf")
        self.count = 0
        self.in_place = False  # a rewritten line is on the terminal and still lacks its newline

    def __call__(self, count: int) -> None:
        self.count = count
        now = self.clock()
        if now - self.last_shown < (0.5 if self.tty else 10.0):
            return
        self.last_shown = now
        self._show(self.line(count, now - self.started))

    def line(self, count: int, elapsed: float) -> str:
        """`label: 350,000 of about 711,000 resources (49%), 17,100/s, 20 s, about 21 s left`."""
        rate = count / elapsed if elapsed > 0 else 0.0
        parts = [f"{count:,} resources"]
        if self.expected:
            percent = min(99, int(100 * count / self.expected))
            parts = [f"{count:,} of about {self.expected:,} resources ({percent}%)"]
        parts.append(f"{rate:,.0f}/s" if rate else "")
        parts.append(f"{elapsed:.0f} s")
        if self.expected and rate and self.expected - count >= rate:
            parts.append(f"about {(self.expected - count) / rate:.0f} s left")
        return f"{self.label}: " + ", ".join(part for part in parts if part)

    def finish(self) -> None:
        """The build is over (or was never needed): end the line cleanly, with the final count and rate."""
        if self.last_shown == float("-inf"):
            return  # the database was cached: nothing was shown, nothing to end
        elapsed = self.clock() - self.started
        rate = f", {self.count / elapsed:,.0f}/s" if elapsed > 0 else ""
        self._show(f"{self.label}: done, {self.count:,} resources in {elapsed:.0f} s{rate}")
        if self.in_place:
            self.stream.write("\n")
            self.stream.flush()
            self.in_place = False
        self.last_shown = float("-inf")

    def _show(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + line)  # back to the start of the line and clear it
            self.stream.flush()
            self.in_place = True
        elif self.write_line is not None:
            self.write_line(line)
        else:
            print(line, file=self.stream, flush=True)
