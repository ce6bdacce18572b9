"""Merging run folders -- the shards of one run, or any runs of one model and identity -- into one run.

The merged folder holds what one process running the whole selection would have written:
runs.jsonl with one line per attempt (the latest line of each, in the run's order),
transcripts.jsonl with the transcript each line names, run.json with the common identity and
every shard's sessions, and summary.json built from them exactly as a run builds it. So the
reports, the viewer and the CI gates read a merged folder like any other.

Anything that would make the merged verdicts not one run's is refused, naming the difference:
another identity (model, task set, environment, modes, sampling), another environment
fingerprint, shards of different counts or selections, a shard present twice or missing, an
attempt recorded in two folders, attempts outside their shard or missing from it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medbench.results.folder_lock import RunRefused
from medbench.results.records import RecordKey, record_key
from medbench.results.resume import identity_differences
from medbench.results.summary import build_summary, latest_records
from medbench.results.writer import RunFolder
from medbench.sharding import Shard, assign_shards, selected_attempts

SHARD_KEY = "shard"
KEYS_SHOWN = 5


class MergeRefused(Exception):
    """The folders are not parts of one run; the message names the difference and the fix."""


@dataclass
class RunPart:
    """One input folder: its manifest, its latest line per attempt, and its shard (None: not a shard)."""

    folder: RunFolder
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.folder.path)

    @property
    def shard(self) -> Shard | None:
        recorded = self.manifest.get("identity", {}).get(SHARD_KEY)
        return Shard(int(recorded["index"]), int(recorded["count"])) if recorded else None

    @property
    def identity(self) -> dict[str, Any]:
        """The identity every part of the run shares: the recorded one without its shard."""
        return {key: value for key, value in self.manifest.get("identity", {}).items() if key != SHARD_KEY}

    @property
    def keys(self) -> set[RecordKey]:
        return {record_key(row) for row in self.rows}

    @property
    def fingerprints(self) -> set[str]:
        return {str(row.get("environment_fingerprint")) for row in self.rows}


@dataclass(frozen=True)
class MergeResult:
    """What a merge wrote: the folder, its summary, and the parts it came from."""

    out: Path
    summary: dict[str, Any]
    parts: tuple[str, ...]
    shards: tuple[str, ...]


def merge_runs(folders: Sequence[Path], out: Path) -> MergeResult:
    """Check that `folders` are the parts of one run and write the merged run into `out`."""
    if not folders:
        raise MergeRefused("merge needs at least one run folder")
    out_folder = RunFolder(out)
    resolved = {Path(f).resolve() for f in folders}
    if len(resolved) < len(folders):
        raise MergeRefused("a folder is named twice on the command line; name each shard's folder once")
    if out_folder.path.resolve() in resolved:
        raise MergeRefused(f"--out {out} is one of the folders to merge; write the merged run to a new folder")
    if out_folder.has_results():
        raise MergeRefused(f"--out {out} already holds a run; merge into an empty folder (nothing was changed)")
    with ExitStack() as held:
        session = f"merge-{uuid.uuid4().hex[:8]}"
        for folder in [RunFolder(f) for f in folders] + [out_folder]:
            _hold(folder, session, held)
        parts = [_read_part(RunFolder(f)) for f in folders]
        check_same_run(parts)
        order = expected_attempts(parts)
        manifest = merged_manifest(parts)
        rows = _in_run_order([row for part in parts for row in part.rows], order)
        _write(out_folder, parts, rows, manifest)
        summary = build_summary(manifest, rows)
        out_folder.write_summary(summary)
    shards = tuple(part.shard.label for part in parts if part.shard is not None)
    return MergeResult(out_folder.path, summary, tuple(part.name for part in parts), tuple(sorted(shards)))


def _hold(folder: RunFolder, session: str, held: ExitStack) -> None:
    """Hold each folder for the merge: a shard still being written is refused, and nothing writes meanwhile."""
    try:
        with folder.lock():
            folder.session_lock.acquire(session)
    except RunRefused as error:
        raise MergeRefused(
            f"{folder.path} is being written by a running session; merge once it ended ({error})"
        ) from None
    held.callback(folder.session_lock.release)


def _read_part(folder: RunFolder) -> RunPart:
    manifest = folder.read_manifest()
    if manifest is None or "identity" not in manifest:
        raise MergeRefused(
            f"{folder.path} has no {folder.manifest_path.name}: not a medbench run folder "
            "(name the folder holding runs.jsonl and run.json, e.g. results/<model>)"
        )
    return RunPart(folder, manifest, latest_records(folder.records()))


def check_same_run(parts: list[RunPart]) -> None:
    """Refuse parts of different runs, naming the first difference found."""
    first = parts[0]
    for part in parts[1:]:
        differences = identity_differences(first.identity, part.identity)
        if differences:
            raise MergeRefused(f"{part.name} is not part of the same run as {first.name}: {'; '.join(differences)}")
    fingerprints = {fp: part.name for part in parts for fp in part.fingerprints}
    if len(fingerprints) > 1:
        listed = "; ".join(f"{fp} ({name})" for fp, name in fingerprints.items())
        raise MergeRefused(
            f"the folders ran on different environments (environment fingerprints differ: {listed}); "
            "their verdicts are not one run's"
        )
    shards = [part.shard for part in parts]
    if any(shards) and not all(shards):
        plain = [part.name for part in parts if part.shard is None]
        raise MergeRefused(
            f"{', '.join(plain)} {'is' if len(plain) == 1 else 'are'} not a shard, the others are; "
            "merge the shards of one run, or whole runs"
        )
    counts = {shard.count for shard in shards if shard is not None}
    if len(counts) > 1:
        raise MergeRefused(
            f"the shards split the run differently ({', '.join(_labels(parts))}); "
            "every shard of one run uses the same N in --shard I/N"
        )
    selections = {_selection(part).get("sha256") for part in parts}
    if len(selections) > 1:
        raise MergeRefused(
            "the shards ran different selections of attempts (their selection sha256 differs: another "
            "--task-id or --repeats); run every shard with the same options"
        )
    _check_overlaps(parts)


def _check_overlaps(parts: list[RunPart]) -> None:
    by_shard: dict[str, list[str]] = {}
    for part in parts:
        if part.shard is not None:
            by_shard.setdefault(part.shard.label, []).append(part.name)
    for label, names in sorted(by_shard.items()):
        if len(names) > 1:
            raise MergeRefused(
                f"shard {label} was run twice ({' and '.join(names)}): its attempts would be recorded "
                "twice; merge one folder per shard"
            )
    seen: dict[RecordKey, str] = {}
    for part in parts:
        twice = sorted(key for key in part.keys if key in seen)
        if twice:
            raise MergeRefused(
                f"{len(twice)} attempt(s) are recorded in both {seen[twice[0]]} and {part.name} "
                f"({_keys(twice)}); each attempt must come from one folder"
            )
        seen.update(dict.fromkeys(part.keys, part.name))


def expected_attempts(parts: list[RunPart]) -> list[RecordKey]:
    """The run's attempts in order; refuses missing shards, attempts outside their shard, and missing attempts."""
    selection = _selection(parts[0])
    attempts = selected_attempts(selection)
    if not attempts:
        raise MergeRefused(
            f"{parts[0].name}: run.json records no selection of attempts (written before "
            "sharding existed?); rerun with this harness version"
        )
    keys = [(a.task_id, a.attempt) for a in attempts]
    shard = parts[0].shard
    if shard is None:
        owners = {key: 0 for key in keys}
        present = {0: parts}
    else:
        owners = dict(zip(keys, assign_shards(attempts, shard.count)))
        present = {part.shard.index: [part] for part in parts if part.shard is not None}
        missing = [index for index in range(1, shard.count + 1) if index not in present]
        if missing:
            have = ", ".join(_labels(parts))
            need = ", ".join(f"{index}/{shard.count}" for index in missing)
            raise MergeRefused(
                f"shard(s) {need} missing (have {have}); run them (--shard {missing[0]}/{shard.count}) "
                "and merge every shard's folder"
            )
    count = shard.count if shard is not None else 0
    recorded = {owner: set().union(*(part.keys for part in owned_by)) for owner, owned_by in present.items()}
    wanted = {owner: {key for key, o in owners.items() if o == owner} for owner in present}
    for owner, owned_by in present.items():
        stray = sorted(recorded[owner] - wanted[owner])
        if stray:
            where = owned_by[0].name if len(owned_by) == 1 else "the folders"
            raise MergeRefused(
                f"{where} holds {len(stray)} attempt(s) outside the run's selection"
                f"{'' if owner == 0 else f' of shard {owner}/{count}'} ({_keys(stray)})"
            )
    for owner, owned_by in present.items():
        lacking = [key for key in keys if key in wanted[owner] - recorded[owner]]
        if lacking:
            which = "the run" if owner == 0 else f"shard {owner}/{count} ({owned_by[0].name})"
            fix = "--resume" if owner == 0 else f"--resume --shard {owner}/{count}"
            raise MergeRefused(
                f"{which} lacks {len(lacking)} of its {len(wanted[owner])} attempt(s) ({_keys(lacking)}); "
                f"finish it with {fix} and merge again"
            )
    return keys


def merged_manifest(parts: list[RunPart]) -> dict[str, Any]:
    """run.json of the merged run: the shared identity and details, every part's sessions and timings."""
    first = parts[0].manifest
    details = {key: value for key, value in first.get("details", {}).items() if key != "shard_attempts"}
    endpoints = [part.manifest.get("details", {}).get("endpoint") for part in parts]
    if any(endpoint != endpoints[0] for endpoint in endpoints):
        details["endpoint"] = {"parts": endpoints}
    manifest: dict[str, Any] = {
        "harness_version": first.get("harness_version"),
        "created": min(str(part.manifest.get("created", "")) for part in parts),
        "identity": parts[0].identity,
        "details": details,
        "sessions": [session for part in parts for session in part.manifest.get("sessions", [])],
    }
    for key in ("session_elapsed", "session_setup", "resumed_by"):
        merged = {k: v for part in parts for k, v in part.manifest.get(key, {}).items()}
        if merged:
            manifest[key] = merged
    manifest["merged"] = {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "from": [
            {
                "folder": part.name,
                "shard": part.shard.label if part.shard else None,
                "sessions": part.manifest.get("sessions", []),
                "attempts": len(part.rows),
            }
            for part in parts
        ],
    }
    return manifest


def _in_run_order(rows: list[dict[str, Any]], order: list[RecordKey]) -> list[dict[str, Any]]:
    position = {key: i for i, key in enumerate(order)}
    return sorted(rows, key=lambda row: position[record_key(row)])


def _write(out: RunFolder, parts: list[RunPart], rows: list[dict[str, Any]], manifest: dict[str, Any]) -> None:
    """transcripts.jsonl (the transcript each line names, copied as recorded), runs.jsonl, run.json."""
    names = {record_key(row): str(row.get("transcript_id")) for row in rows}
    named: dict[RecordKey, bytes] = {}
    latest: dict[RecordKey, bytes] = {}  # lines written before transcript ids existed: the last one of the attempt
    for part in parts:
        for line in _lines(part.folder.transcripts_path):
            try:
                transcript = json.loads(line)
            except ValueError:
                continue  # a torn line (a writer killed mid-write): its runs line was never written
            key = record_key(transcript)
            if key not in names:
                continue
            latest[key] = line
            if str(transcript.get("transcript_id")) == names[key]:
                named[key] = line
    chosen = {key: named.get(key) or latest.get(key) for key in names}
    out.path.mkdir(parents=True, exist_ok=True)
    _write_lines(out.transcripts_path, (kept for row in rows if (kept := chosen[record_key(row)]) is not None))
    _write_lines(out.runs_path, (json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n" for row in rows))
    out.write_manifest(manifest)


def _lines(path: Path) -> Iterator[bytes]:
    if not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield line if line.endswith(b"\n") else line + b"\n"


def _write_lines(path: Path, lines: Iterator[bytes]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        for line in lines:
            handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _selection(part: RunPart) -> dict[str, Any]:
    return dict(part.manifest.get("details", {}).get("selection") or {})


def _labels(parts: list[RunPart]) -> list[str]:
    return [part.shard.label for part in parts if part.shard is not None]


def _keys(keys: Sequence[RecordKey]) -> str:
    shown = ", ".join(f"{task_id} attempt {attempt}" for task_id, attempt in keys[:KEYS_SHOWN])
    return shown + (f" and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else "")
