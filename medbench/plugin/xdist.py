"""pytest-xdist wiring for concurrent attempts: hand every test out up front, and let a worker see its queue.

With `--concurrency N`, a worker keeps N attempts in flight, so it must know its next tests
before pytest reaches them. xdist's default `load` scheduler sends a few tests at a time, and
`worksteal` takes queued tests back from busy workers -- tests whose attempts may already be
running. `UpfrontScheduling` sends every test at once, interleaved across workers (categories
differ in cost), and never takes one back; a crashed worker's tests go to the others.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.remote import WorkerInteractor
from xdist.scheduler.worksteal import WorkStealingScheduling

# A worker must hold at least two queued tests: it pops the next one before running the current.
MIN_QUEUED = 2


class UpfrontScheduling(WorkStealingScheduling):
    """xdist scheduler: all pending tests handed out interleaved at the start, never stolen back."""

    def check_schedule(self) -> None:
        nodes = [node for node in self.node2pending if not node.shutting_down]
        if self.pending and nodes:
            shares = [self.pending[i :: len(nodes)] for i in range(len(nodes))]
            self.pending[:] = []
            for node, share in zip(nodes, shares):
                if share:
                    self.node2pending[node].extend(share)
                    node.send_runtest_some(share)
        if not self.pending:
            for node in nodes:
                if len(self.node2pending[node]) < MIN_QUEUED:
                    node.shutdown()


def queued_indices(config: pytest.Config) -> list[int]:
    """Indices (into session.items) of the tests this xdist worker has been sent and not yet started."""
    for plugin in config.pluginmanager.get_plugins():
        # By name, not isinstance: xdist runs its worker module from source sent over execnet, so
        # the worker's WorkerInteractor is not the class `xdist.remote` defines in this process.
        if type(plugin).__name__ == WorkerInteractor.__name__ and hasattr(plugin, "torun"):
            with plugin.torun.lock() as queue:
                queued = [index for index in queue if isinstance(index, int)]
            following = plugin.nextitem_index  # popped before the current test runs
            return ([following] if isinstance(following, int) else []) + queued
    return []


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config) -> dict[str, Any]:
    return getattr(config, "workerinput", {})
