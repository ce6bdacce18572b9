"""What a model call reports while it retries: one event per retry or give-up, named by task.

A hung or flaky endpoint must never be silent: every retried attempt (timeouts included) and
every call that gives up becomes a `CallEvent`. Events go to the `medbench.models` logger at
WARNING and to the callbacks registered with `listening()`, which is how the pytest plugin
prints them. The agent loop names the task with `for_task()`, so the model client itself
never needs to know which task it is answering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

logger = logging.getLogger("medbench.models")

RETRY = "retry"
GAVE_UP = "gave_up"

_task: ContextVar[str | None] = ContextVar("medbench_call_task", default=None)
_listeners: ContextVar[tuple[Callable[[CallEvent], None], ...]] = ContextVar("medbench_call_listeners", default=())


@dataclass(frozen=True)
class CallEvent:
    """One retried or abandoned model-call attempt.

    `attempt` is 1-based within the call (attempt 2 is the first retry); `wait_s` is the pause
    before the next attempt (None when the call gives up); `elapsed_s` counts from the start of
    the call; `task` is the task id the agent loop was running, when there was one.
    """

    kind: str
    attempt: int
    reason: str
    timed_out: bool
    elapsed_s: float
    wait_s: float | None = None
    task: str | None = None

    def line(self) -> str:
        """The one terminal line: task, attempt, what went wrong and what happens next."""
        who = f"{self.task}: " if self.task else ""
        what = f"model call attempt {self.attempt} {'timed out' if self.timed_out else 'failed'}"
        if self.kind == RETRY:
            return f"{who}{what} ({_short(self.reason)}); retrying in {self.wait_s or 0.0:.1f} s"
        return f"{who}{what} ({_short(self.reason)}); giving up after {self.elapsed_s:.1f} s"


def emit(event: CallEvent) -> None:
    """Log the event and hand it to every listener of the current context (task label added)."""
    task = _task.get()
    if task is not None and event.task is None:
        event = CallEvent(event.kind, event.attempt, event.reason, event.timed_out, event.elapsed_s, event.wait_s, task)
    logger.warning(event.line())
    for listener in _listeners.get():
        listener(event)


@contextmanager
def for_task(task_id: str) -> Iterator[None]:
    """Label the events of the model calls made inside with `task_id`."""
    token = _task.set(task_id)
    try:
        yield
    finally:
        _task.reset(token)


@contextmanager
def listening(callback: Callable[[CallEvent], None]) -> Iterator[None]:
    """Call `callback` with every event emitted inside (in this thread or context)."""
    token = _listeners.set((*_listeners.get(), callback))
    try:
        yield
    finally:
        _listeners.reset(token)


@contextmanager
def collected(write: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """The lines of the events emitted inside, in order; each also goes to `write` at once when given.

    The pytest plugin passes the terminal's writer when it runs tests itself (live lines), and
    None in an xdist worker, whose terminal nobody sees: it ships the collected lines instead.
    """
    lines: list[str] = []

    def keep(event: CallEvent) -> None:
        lines.append(event.line())
        if write is not None:
            write(lines[-1])

    with listening(keep):
        yield lines


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
