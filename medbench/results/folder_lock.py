"""One session per results folder: a lock that every process of the session holds for its life.

Two sessions appending to one folder mix their runs (the second archives the first's files
while the first still writes), so a session must own its folder. The lock is an OS file lock
(`flock`) on `<folder>/.session.lock`: the kernel drops it when a process dies, so a killed
session leaves no stale lock behind, whatever files it left.

Every process of a session (the controller and its xdist workers alike) holds the lock in
shared mode. A process takes it by first trying it exclusively: if that works, nobody holds the
folder, it records itself as the holder (`.session.json`: session id, pid, host, time) and
keeps a shared hold; if not, it may join only when the recorded holder is its own session.
These steps run under the folder's short write lock, so no two processes interleave them.
On systems without `flock` (Windows) the lock is not available and sessions are not checked.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SESSION_LOCK_FILE = ".session.lock"
HOLDER_FILE = ".session.json"


class RunRefused(Exception):
    """This session may not write to the results folder; the message says why and what to do."""


class FolderInUse(RunRefused):
    """Another live session holds the results folder."""


class SessionLock:
    """The session hold on one results folder; call `acquire`/`join_if_ours` under `RunFolder.lock()`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / SESSION_LOCK_FILE
        self.holder_path = self.folder / HOLDER_FILE
        self._fd: int | None = None
        self._session: str | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, session: str) -> None:
        """Hold the folder for `session`: take it when free, join it when `session` holds it already.

        Raises FolderInUse naming the holder (session, pid, host) when another live session holds it."""
        if fcntl is None or (self._fd is not None and self._session == session):
            return
        self.release()  # held for another session of this process (in-process pytest runs): start over
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if _flock(fd, fcntl.LOCK_EX):
                self._record_holder(session)
                fcntl.flock(fd, fcntl.LOCK_SH)  # keep a shared hold so this session's other processes can join
            else:
                holder = self.holder()
                if holder.get("session") != session or not _flock(fd, fcntl.LOCK_SH):
                    raise FolderInUse(self._in_use_message(holder))
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._session = fd, session

    def join_if_ours(self, session: str) -> bool:
        """Join (and name this process as the holder) when `session` already holds the folder.

        For the xdist controller: its workers take the folder, the controller then holds it too,
        so the folder stays held for as long as the session lives, whichever worker dies."""
        if self._fd is not None or fcntl is None or not self.holder_path.exists():
            return self._fd is not None
        if self.holder().get("session") != session:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _flock(fd, fcntl.LOCK_SH):
            os.close(fd)
            return False
        self._fd, self._session = fd, session
        self._record_holder(session)
        return True

    def release(self) -> None:
        """Let go of the folder (the kernel does the same when the process dies)."""
        if self._fd is None:
            return
        fd, self._fd, self._session = self._fd, None, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def holder(self) -> dict[str, Any]:
        """Who took the folder last: {session, pid, host, since}; {} when unknown."""
        try:
            data = json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _record_holder(self, session: str) -> None:
        holder = {
            "session": session,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        tmp = self.holder_path.with_name(f"{self.holder_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(holder) + "\n", encoding="utf-8")
        os.replace(tmp, self.holder_path)

    def _in_use_message(self, holder: dict[str, Any]) -> str:
        who = (
            (
                f"session {holder.get('session', '?')}, pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                f"since {holder.get('since', '?')}"
            )
            if holder
            else "holder unknown"
        )
        return (
            f"results folder {self.folder} is in use by another medbench session ({who}). Two sessions "
            "writing one folder would mix their runs. Wait for that session to end (a killed session "
            "frees the folder at once), or give this one its own folder with --run-name NAME or --results-dir DIR."
        )


def _flock(fd: int, mode: int) -> bool:
    """Try a lock without waiting; False when someone else's hold conflicts."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
