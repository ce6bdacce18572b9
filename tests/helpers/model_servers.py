"""Built-in model servers as separate processes (`python -m medbench.models serve`), for replica tests."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class ServedModel:
    """One `serve` process and the base URL it printed."""

    base_url: str
    process: subprocess.Popen[str]

    def answered(self) -> int:
        """How many chat completions it answered, as it says when it stops (waits for it to stop)."""
        output = self.process.communicate(timeout=30)[0]
        match = re.search(r"after answering (\d+)", output)
        assert match, output
        return int(match.group(1))


@contextmanager
def served_models(*options: Sequence[str]) -> Iterator[list[ServedModel]]:
    """One server per entry of `options` (each its extra `serve` options), on free ports; stopped at the end."""
    started: list[ServedModel] = []
    try:
        for extra in options:
            process = subprocess.Popen(
                [sys.executable, "-m", "medbench.models", "serve", "--port=0", *extra],
                stdout=subprocess.PIPE,
                text=True,
            )
            line = process.stdout.readline()  # type: ignore[union-attr]
            match = re.search(r"at (http://\S+)", line)
            assert match, line
            started.append(ServedModel(match.group(1), process))
        yield started
    finally:
        for served in started:
            if served.process.poll() is None:
                served.process.terminate()
            served.process.communicate(timeout=30)
