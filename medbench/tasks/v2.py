"""The official MedAgentBench v2 assets (the 300-task file and the two system prompts), obtained at
run time and verified by hash.

Like the v1 assets they may not live in this repository: they come from a local folder (a flat
folder or a clone of the upstream repository) named by `--official-dir` / `MEDBENCH_V2_DIR`, else
from the user cache, filled by downloading from the upstream repository. A file whose hash differs
from the published one is refused, so a v2 score is only ever reported against the exact task set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import requests
from filelock import FileLock

from medbench.tasks.official import OfficialAssetsError, _write_atomically, cache_root
from medbench.tasks.task import Task, TaskSet, canonical_sha256
from medbench.tasks.task_file import TaskFileError, category_of

TASKS_FILE = "new_patient_tasks.json"
PROMPT_FILE = "new_system.txt"
"""The system prompt upstream's scoring and server use (system.txt plus the procedure and condition tools)."""
OLDER_PROMPT_FILE = "system.txt"
ASSET_FILES = (TASKS_FILE, PROMPT_FILE, OLDER_PROMPT_FILE)

EXPECTED_SHA256 = {
    # canonical JSON (as for the v1 task file): a re-formatted but identical file is accepted
    TASKS_FILE: "27c0a19a4de233598dbe8225f46f4d3eebf7dff90e8620fbc4f3db8e9eb57535",
    # the prompts byte for byte: they are shown to the model exactly as published
    PROMPT_FILE: "b1e7fda6ed2b1c1fbe45f5bf6180fc91f2c74f589c1da6293d83f95717cc855c",
    OLDER_PROMPT_FILE: "6a25502e0c7e57d8f1ee7476360398fb9d4fffc37b29c070f26b3d48edf12b5e",
}
UPSTREAM_PATHS = {
    TASKS_FILE: f"medagentbench_v2/src/MedAgentBench/data/medagentbench/{TASKS_FILE}",
    PROMPT_FILE: f"medagentbench_v2/src/prompts/{PROMPT_FILE}",
    OLDER_PROMPT_FILE: f"medagentbench_v2/src/prompts/{OLDER_PROMPT_FILE}",
}
DEFAULT_DOWNLOAD_BASE = "https://raw.githubusercontent.com/ericoericochen/medagentbenchv2/main/"
DIR_ENV = "MEDBENCH_V2_DIR"
URL_ENV = "MEDBENCH_V2_URL"
DOWNLOAD_TIMEOUT_S = 60.0


class V2AssetsError(OfficialAssetsError):
    """The official v2 assets could not be obtained or verified; the message says how to provide them."""


def v2_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the official v2 assets are cached: <cache root>/official-v2."""
    return cache_root(cache_dir) / "official-v2"


def _error(file: str, problem: str, cache: Path) -> V2AssetsError:
    return V2AssetsError(
        f"official MedAgentBench v2 asset {file}: {problem}. Expected SHA-256 {EXPECTED_SHA256[file]}. "
        "Provide the v2 assets in one of two ways: pass --official-dir (or set "
        f"{DIR_ENV}) to a clone of ericoericochen/medagentbenchv2 or to a folder holding "
        f"{', '.join(ASSET_FILES)}; or let medbench download them into {cache} "
        f"(from {DEFAULT_DOWNLOAD_BASE}, or the base URL in {URL_ENV})."
    )


def asset_sha256(file: str, data: bytes) -> str:
    """The task file hashes its canonical JSON, the prompts their raw bytes."""
    if file == TASKS_FILE:
        return canonical_sha256(json.loads(data.decode("utf-8")))
    return hashlib.sha256(data).hexdigest()


def _verified(file: str, data: bytes, cache: Path) -> str:
    try:
        text = data.decode("utf-8")
        actual = asset_sha256(file, data)
    except UnicodeDecodeError:
        raise _error(file, "is not UTF-8 text; the file is damaged", cache) from None
    except json.JSONDecodeError as error:
        raise _error(file, f"is not valid JSON ({error}); the file looks truncated or damaged", cache) from None
    if actual != EXPECTED_SHA256[file]:
        raise _error(file, f"content hash {actual} does not match (an edited or other version of the file)", cache)
    return text


def _read_local(folder: Path, file: str, cache: Path) -> bytes:
    """One asset from a flat folder or from an upstream clone's layout."""
    for candidate in (folder / file, folder / UPSTREAM_PATHS[file]):
        if candidate.is_file():
            return candidate.read_bytes()
    raise _error(file, f"not found in {folder} (looked for {folder / file} and {folder / UPSTREAM_PATHS[file]})", cache)


def _download(file: str, base: str, cache: Path) -> bytes:
    url = base.rstrip("/") + "/" + UPSTREAM_PATHS[file]
    try:
        response = requests.get(url, timeout=DOWNLOAD_TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as error:
        raise _error(file, f"download from {url} failed ({error})", cache) from None
    return response.content


def fetch_v2(cache_dir: str | Path | None = None, download_base: str | None = None) -> Path:
    """Make sure the cache holds every verified v2 asset, downloading what is missing or damaged.

    The download base is the argument, else $MEDBENCH_V2_URL, else upstream GitHub (main). A file
    lock keeps concurrent pytest-xdist workers from downloading twice."""
    cache = v2_cache_dir(cache_dir)
    base = download_base or os.environ.get(URL_ENV) or DEFAULT_DOWNLOAD_BASE
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / ".fetch.lock")):
        for file in ASSET_FILES:
            target = cache / file
            if target.is_file():
                try:
                    _verified(file, target.read_bytes(), cache)
                    continue
                except V2AssetsError:
                    target.unlink()
            _write_atomically(target, _verified(file, _download(file, base, cache), cache))
    return cache


def _texts(official_dir: str | Path | None, cache_dir: str | Path | None, download_base: str | None) -> dict[str, str]:
    cache = v2_cache_dir(cache_dir)
    chosen = official_dir or os.environ.get(DIR_ENV)
    folder = Path(chosen) if chosen else fetch_v2(cache_dir, download_base)
    if not folder.is_dir():
        raise _error(TASKS_FILE, f"folder {folder} does not exist", cache)
    return {file: _verified(file, _read_local(folder, file, cache), cache) for file in ASSET_FILES}


def v2_system_prompts(
    official_dir: str | Path | None = None, cache_dir: str | Path | None = None, download_base: str | None = None
) -> dict[str, str]:
    """Both upstream v2 system prompts by file name, verified (new_system.txt is the one runs use)."""
    texts = _texts(official_dir, cache_dir, download_base)
    return {PROMPT_FILE: texts[PROMPT_FILE], OLDER_PROMPT_FILE: texts[OLDER_PROMPT_FILE]}


def load_v2(
    official_dir: str | Path | None = None, cache_dir: str | Path | None = None, download_base: str | None = None
) -> TaskSet:
    """The 300 official v2 tasks in upstream order, shown with upstream's new_system.txt."""
    texts = _texts(official_dir, cache_dir, download_base)
    try:
        tasks = v2_tasks_from_records(json.loads(texts[TASKS_FILE]), f"official v2 {TASKS_FILE}")
    except TaskFileError as error:
        raise _error(TASKS_FILE, str(error), v2_cache_dir(cache_dir)) from None
    return TaskSet(
        name="v2",
        tasks=tasks,
        prompt_template=texts[PROMPT_FILE],
        functions=[],
        flavour="official",
        benchmark="v2",
    )


def v2_tasks_from_records(records: object, source: str) -> tuple[Task, ...]:
    """Validate v2 task records (id, instruction, context, eval_MRN; no `sol`), keeping file order.

    v2 differs from v1 in one rule: every category names its patient by `eval_MRN` (v1 task1
    instead carries the expected answer in `sol`)."""
    if not isinstance(records, list):
        raise TaskFileError(f"{source}: expected a JSON list of task records, found {type(records).__name__}")
    tasks: list[Task] = []
    seen: set[str] = set()
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise TaskFileError(f"{source}: entry {position} is a {type(record).__name__}, expected a JSON object")
        task_id = record.get("id")
        if not isinstance(task_id, str):
            raise TaskFileError(f"{source}: entry {position} key 'id': missing or not a string")
        try:
            category = category_of(task_id)
        except TaskFileError as error:
            raise TaskFileError(f"{source}: {error}") from None
        for key in ("instruction", "context", "eval_MRN"):
            if not isinstance(record.get(key), str):
                raise TaskFileError(f"{source}: task {task_id!r} key {key!r}: missing or not a string")
        if task_id in seen:
            raise TaskFileError(f"{source}: task {task_id!r} key 'id': duplicate id")
        seen.add(task_id)
        sol = record.get("sol")
        tasks.append(
            Task(
                task_id,
                category,
                record["instruction"],
                record["context"],
                record["eval_MRN"],
                sol if isinstance(sol, list) else None,
            )
        )
    return tuple(tasks)
