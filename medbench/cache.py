"""`python -m medbench cache info|clear`: what the medbench cache holds, and a way to free it.

The cache root is `--cache-dir`, else `$MEDBENCH_CACHE_DIR`, else the platform's user cache
(`~/.cache/medbench` on Linux). It holds the synthetic EHR databases (`ehr/`, about 0.9 GB per
full-scale database; one per seed, scale and seating, and one more after each generator
version; v1 and v2 alike) and the downloaded official assets (`official/`, `official-v2/`). Everything in it is rebuilt or
fetched again on the next run that needs it, so clearing it loses nothing but time.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from medbench.tasks.official import cache_root

PARTS = {"ehr": "synthetic EHR databases", "official": "downloaded official assets (v1 and v2)"}
FOLDERS = {"ehr": ("ehr",), "official": ("official", "official-v2")}


@dataclass(frozen=True)
class CacheEntry:
    """One removable thing in the cache: an EHR database (with its lock file) or a whole folder."""

    path: Path
    part: str
    size: int


def entries(root: Path, parts: tuple[str, ...] = tuple(PARTS)) -> list[CacheEntry]:
    """What `clear` would remove, largest first: each EHR database, the official folder, stray files."""
    found: list[CacheEntry] = []
    for part in parts:
        for folder in (root / name for name in FOLDERS[part]):
            if not folder.is_dir():
                continue
            if part == "ehr":
                for path in sorted(folder.iterdir()):
                    if path.suffix != ".lock":
                        found.append(CacheEntry(path, part, _size(path)))
            else:
                found.append(CacheEntry(folder, part, _size(folder)))
    return sorted(found, key=lambda entry: entry.size, reverse=True)


def clear(
    root: Path, parts: tuple[str, ...] = tuple(PARTS), *, dry_run: bool = False
) -> tuple[list[CacheEntry], list[str]]:
    """Remove the entries; one being built right now (its lock is held) is left alone and named."""
    removed: list[CacheEntry] = []
    kept: list[str] = []
    for entry in entries(root, parts):
        if entry.part != "ehr":
            if not dry_run:
                _remove(entry.path)
            removed.append(entry)
            continue
        lock_path = Path(str(entry.path) + ".lock")
        try:
            with FileLock(str(lock_path)).acquire(timeout=0):
                if not dry_run:
                    _remove(entry.path)
        except Timeout:
            kept.append(f"{entry.path} (in use: a session is building it)")
            continue
        if not dry_run:
            lock_path.unlink(missing_ok=True)
        removed.append(entry)
    return removed, kept


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def add_cache_commands(commands: Any) -> None:
    """The `cache` command with its `info` and `clear` subcommands, on `python -m medbench`'s parser."""
    cache = commands.add_parser("cache", help="show or clear the cache (EHR databases, official assets)")
    actions = cache.add_subparsers(dest="cache_command", required=True)
    for name, text in (
        ("info", "print the cache folder and the size of each thing in it"),
        ("clear", "delete the cached EHR databases and official assets (rebuilt or fetched when next needed)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help="cache root (default: $MEDBENCH_CACHE_DIR, else the user cache)",
        )
        for part, label in PARTS.items():
            action.add_argument(f"--{part}", action="store_true", help=f"only the {label} ({part}/)")
        if name == "clear":
            action.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")


def run_cache_command(args: argparse.Namespace) -> int:
    root = cache_root(args.cache_dir)
    parts = tuple(part for part in PARTS if getattr(args, part)) or tuple(PARTS)
    if args.cache_command == "info":
        found = entries(root, parts)
        print(f"medbench cache: {root}")
        for entry in found:
            print(f"  {human(entry.size):>9}  {entry.path.relative_to(root)}")
        print(f"  {human(sum(entry.size for entry in found)):>9}  in all ({len(found)} entries)")
        return 0
    removed, kept = clear(root, parts, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for entry in removed:
        print(f"{verb} {entry.path} ({human(entry.size)})")
    for line in kept:
        print(f"kept {line}")
    print(f"{verb} {len(removed)} entries, {human(sum(entry.size for entry in removed))} in all, from {root}")
    return 0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
