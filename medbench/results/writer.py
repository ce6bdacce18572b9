"""The results folder of one run: append-only JSONL files shared by concurrent xdist workers.

Every append happens under one file lock per folder and is written to the file (the OS holds
it) before `append` returns, so a line is either whole or (after a hard kill mid-write) a torn
tail that readers skip and the next writer terminates; a killed process loses no line it
appended. The fsync that also survives a machine crash is off the hot path: one background
thread syncs the files appended to, a group of lines at a time, and `sync()` (called before
the summary is written) waits until every line is on disk. The manifest (run.json) names the
run and the sessions that wrote it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from medbench.jsonsafe import json_safe
from medbench.results.folder_lock import SessionLock
from medbench.results.records import RUNS_FILE, TRANSCRIPTS_FILE

MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.json"
ARCHIVE_DIR = "archive"
# Archived runs kept per results folder (the newest); a run is tens of MB with its transcripts.
KEEP_ARCHIVES = 5
LOCK_FILE = ".lock"


class RunFolder:
    """`<results-dir>/<model-slug>/`: runs.jsonl, transcripts.jsonl, run.json, summary.json."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.runs_path = self.path / RUNS_FILE
        self.transcripts_path = self.path / TRANSCRIPTS_FILE
        self.manifest_path = self.path / MANIFEST_FILE
        self.summary_path = self.path / SUMMARY_FILE
        # Held for the session's life by each of its processes (see folder_lock); `lock()` is the short one.
        self.session_lock = SessionLock(self.path)
        self.archive_note: str | None = None

    def lock(self) -> FileLock:
        """The folder's short write lock: every writer of every xdist worker takes it for each write."""
        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / LOCK_FILE))

    def append(self, run: dict[str, Any], transcript: dict[str, Any]) -> None:
        """Append one task's lines; the transcript first, so a runs line always has its transcript."""
        with self.lock():
            _append_line(self.transcripts_path, transcript)
            _append_line(self.runs_path, run)
        _SYNCER.request(self.transcripts_path, self.runs_path)

    def sync(self) -> None:
        """Wait until every line appended so far (by this process) is fsynced."""
        _SYNCER.wait()

    def records(self) -> list[dict[str, Any]]:
        """Every whole line of runs.jsonl, in file order."""
        return read_jsonl(self.runs_path)

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.sync()
        write_json_atomic(self.summary_path, summary)

    def has_results(self) -> bool:
        return any(p.exists() for p in (self.runs_path, self.transcripts_path, self.manifest_path, self.summary_path))

    def archive(self, keep: int = KEEP_ARCHIVES) -> Path | None:
        """Move the previous run's files to archive/<time>/, so a new run never mixes with it.

        Only the `keep` newest archives stay (each is a whole run, tens of MB); older ones are
        deleted, and `archive_note` says so."""
        existing = [
            p for p in (self.runs_path, self.transcripts_path, self.manifest_path, self.summary_path) if p.exists()
        ]
        if not existing:
            return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path / ARCHIVE_DIR / stamp
        target.mkdir(parents=True)
        for path in existing:
            shutil.move(str(path), str(target / path.name))
        archives = sorted(p for p in (self.path / ARCHIVE_DIR).iterdir() if p.is_dir())
        removed = archives[:-keep] if keep > 0 else []
        for old in removed:
            shutil.rmtree(old, ignore_errors=True)
        kept = archives[len(removed) :]
        size_mb = sum(f.stat().st_size for d in kept for f in d.rglob("*") if f.is_file()) / 1e6
        self.archive_note = f"the previous run moved to {target} ({len(kept)} archive(s) kept, {size_mb:.0f} MB" + (
            f"; {len(removed)} older one(s) deleted, the newest {keep} are kept)" if removed else ")"
        )
        return target


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Whole JSON lines of a file; a torn line (a writer killed mid-write) is skipped with a warning."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                warnings.warn(f"{path}:{number}: skipping a torn line (an interrupted write)", stacklevel=2)
    return rows


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _append_line(path: Path, row: dict[str, Any]) -> None:
    try:
        data = json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # Records are built UTF-8-safe (records.py); a row from elsewhere must not lose its line either.
        data = json.dumps(json_safe(row), ensure_ascii=False).encode("utf-8") + b"\n"
    with path.open("a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = b"\n" + data
        handle.write(data)


class _Syncer:
    """The background thread that fsyncs appended files, many lines per fsync.

    `append` has written its lines before it returns (a kill loses nothing then); this thread
    makes them survive a machine crash too, without an fsync per line on the attempt's path."""

    def __init__(self) -> None:
        self._pending: set[Path] = set()
        self._requested = 0  # requests so far, and how many of them are synced
        self._synced = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, *paths: Path) -> None:
        with self._condition:
            self._pending.update(paths)
            self._requested += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="medbench-results-fsync", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def wait(self) -> None:
        with self._condition:
            target = self._requested
            while self._synced < target and self._thread is not None and self._thread.is_alive():
                self._condition.wait(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    self._condition.wait()
                paths, self._pending = self._pending, set()
                covered = self._requested
            for path in paths:
                _fsync(path)
            with self._condition:
                self._synced = covered
                self._condition.notify_all()


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # archived or removed meanwhile: nothing left to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SYNCER = _Syncer()
