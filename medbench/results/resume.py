"""Starting, continuing and refusing runs in a results folder.

A run is identified by what makes its verdicts comparable: model, task set (name and
sha256), environment and every mode. A session either starts a new run (the previous files
are archived, never mixed) or, with --resume, continues one with the same identity and skips
the task attempts already recorded, except those that ended in an infrastructure failure
(`error`, `cassette_mismatch`): the endpoint or harness failed there, not the model, so they run
again. The first process of a session to get here decides, under the folder lock; xdist workers
of the same session then join that decision. Every process of the session holds the folder's
session lock from here on, so a second session on the same folder is refused (FolderInUse).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from medbench import __version__
from medbench.outcomes import INFRASTRUCTURE_STATUSES
from medbench.results.folder_lock import FolderInUse, RunRefused
from medbench.results.records import RecordKey, record_key
from medbench.results.writer import RunFolder

__all__ = ["FolderInUse", "ResumeRefused", "RunRefused", "identity_differences", "open_run", "reruns_in_session"]


class ResumeRefused(RunRefused):
    """--resume would mix verdicts of different runs; the message says what differs and what to do."""


def identity_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`name: recorded -> current` for every identity field that changed."""
    names = sorted(set(recorded) | set(current))
    return [
        f"{name}: {recorded.get(name)!r} -> {current.get(name)!r}"
        for name in names
        if recorded.get(name) != current.get(name)
    ]


def open_run(
    folder: RunFolder, *, identity: dict[str, Any], details: dict[str, Any], session: str, resume: bool
) -> set[RecordKey]:
    """Start or continue the run in `folder` for this session; return the attempts to skip.

    Raises FolderInUse when another live session holds the folder, and ResumeRefused when
    --resume meets a run with another identity, or files that carry no identity at all.
    """
    with folder.lock():
        folder.session_lock.acquire(session)
        manifest = folder.read_manifest()
        if manifest is not None and session in manifest.get("sessions", []):
            return recorded_attempts(folder) if manifest.get("resumed_by", {}).get(session) else set()
        recorded_model = (manifest or {}).get("identity", {}).get("model")
        if recorded_model is not None and recorded_model != identity.get("model"):
            raise ResumeRefused(
                f"{folder.path} holds a run of model {recorded_model!r}, and --model={identity.get('model')!r} maps "
                "to the same folder name; keep them apart with --run-name NAME or --results-dir DIR "
                "(nothing was archived or changed)."
            )
        if resume and manifest is not None:
            differences = identity_differences(manifest.get("identity", {}), identity)
            if differences:
                raise ResumeRefused(
                    f"--resume refused: {folder.path} holds a run with other settings "
                    f"({'; '.join(differences)}). Run without --resume to start a new run "
                    "(the old files are archived), or resume with the same options."
                )
            manifest["sessions"].append(session)
            manifest.setdefault("resumed_by", {})[session] = _now()
            folder.write_manifest(manifest)
            return recorded_attempts(folder)
        if resume and folder.runs_path.exists():
            raise ResumeRefused(
                f"--resume refused: {folder.runs_path} has no {folder.manifest_path.name} saying which "
                "model, task set and modes produced it. Run without --resume to start a new run "
                "(the old files are archived)."
            )
        folder.archive()
        folder.write_manifest(
            {
                "harness_version": __version__,
                "created": _now(),
                "identity": identity,
                "details": details,
                "sessions": [session],
            }
        )
        return set()


def reruns_in_session(records: list[dict[str, Any]], session: str) -> int:
    """How many attempts `session` ran again because an earlier session ended them in an
    infrastructure failure (what the terminal reports after a --resume)."""
    before: dict[RecordKey, str] = {}
    rerun: set[RecordKey] = set()
    for record in records:
        key = record_key(record)
        if record.get("session") != session:
            before[key] = str(record.get("status"))
        elif before.get(key) in INFRASTRUCTURE_STATUSES:
            rerun.add(key)
    return len(rerun)


def recorded_attempts(folder: RunFolder) -> set[RecordKey]:
    """The attempts a resume skips: the latest line of each, unless it ended in an infrastructure failure."""
    latest = {record_key(record): str(record.get("status")) for record in folder.records()}
    return {key for key, status in latest.items() if status not in INFRASTRUCTURE_STATUSES}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
