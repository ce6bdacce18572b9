"""The results folder's session lock: one session per folder, its own processes join, killed holders free it.

Other holders are real processes (a subprocess that takes the lock, says so on stdout and waits),
so these tests exercise the OS lock itself; synchronisation is by pipes, never by sleeping.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medbench.results.folder_lock import FolderInUse, SessionLock
from medbench.results.resume import open_run
from medbench.results.writer import RunFolder

IDENTITY = {"model": "reference", "task_set": "generated", "task_set_sha256": "ab" * 32, "grader": "official"}

HOLDER = """
import sys
from pathlib import Path
from medbench.results.writer import RunFolder
folder = RunFolder(Path(sys.argv[1]))
with folder.lock():
    folder.session_lock.acquire(sys.argv[2])
print("held", flush=True)
sys.stdin.read()
"""


class Holder:
    """Another process holding `folder` for `session` until it is stopped or killed."""

    def __init__(self, folder: Path, session: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder), session],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()


def hold(folder: Path, session: str, holders: list[Holder]) -> Holder:
    holder = Holder(folder, session)
    holders.append(holder)
    return holder


def take(folder: Path, session: str) -> SessionLock:
    run_folder = RunFolder(folder)
    with run_folder.lock():
        run_folder.session_lock.acquire(session)
    return run_folder.session_lock


def test_a_second_session_is_refused_naming_the_folder_and_the_holders_pid(
    tmp_path: Path, holders: list[Holder]
) -> None:
    holder = hold(tmp_path, "session-a", holders)
    with pytest.raises(FolderInUse) as refused:
        take(tmp_path, "session-b")
    message = str(refused.value)
    assert str(tmp_path) in message and f"pid {holder.process.pid}" in message and "session-a" in message
    assert "--run-name" in message


def test_processes_of_the_same_session_join_the_holder(tmp_path: Path, holders: list[Holder]) -> None:
    hold(tmp_path, "session-a", holders)
    lock = take(tmp_path, "session-a")
    assert lock.held
    lock.release()


def test_a_killed_session_frees_the_folder_at_once(tmp_path: Path, holders: list[Holder]) -> None:
    holder = hold(tmp_path, "session-a", holders)
    holder.kill()
    lock = take(tmp_path, "session-b")
    assert lock.held and lock.holder()["session"] == "session-b"
    lock.release()


def test_the_folder_stays_held_while_any_process_of_the_session_lives(tmp_path: Path, holders: list[Holder]) -> None:
    first = hold(tmp_path, "session-a", holders)
    hold(tmp_path, "session-a", holders)
    first.kill()
    with pytest.raises(FolderInUse):
        take(tmp_path, "session-b")


def test_a_released_folder_can_be_taken_by_the_next_session(tmp_path: Path) -> None:
    take(tmp_path, "session-a").release()
    lock = take(tmp_path, "session-b")
    assert lock.holder()["session"] == "session-b"
    lock.release()


def test_a_controller_joins_only_a_folder_its_own_workers_took(tmp_path: Path, holders: list[Holder]) -> None:
    assert not SessionLock(tmp_path).join_if_ours("session-a"), "nothing to join: nobody took the folder"
    hold(tmp_path, "session-a", holders)
    assert not SessionLock(tmp_path).join_if_ours("session-b")
    controller = SessionLock(tmp_path)
    assert controller.join_if_ours("session-a")
    assert json.loads((tmp_path / ".session.json").read_text())["session"] == "session-a"
    controller.release()


def test_open_run_refuses_a_folder_in_use_before_archiving_anything(tmp_path: Path, holders: list[Holder]) -> None:
    folder = RunFolder(tmp_path)
    open_run(folder, identity=IDENTITY, details={}, session="session-a", resume=False)
    folder.runs_path.write_text('{"task_id": "task1_1", "status": "completed"}\n')
    folder.session_lock.release()
    hold(tmp_path, "session-a", holders)
    other = RunFolder(tmp_path)
    with pytest.raises(FolderInUse):
        open_run(other, identity=IDENTITY, details={}, session="session-b", resume=False)
    assert folder.runs_path.exists() and not (tmp_path / "archive").exists()
