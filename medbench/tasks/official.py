"""The official MedAgentBench assets (task file v2, function specs, prompt), obtained at run time.

The assets may not live in this repository, so they come from a local upstream clone (or a flat
folder) named by `--official-dir` / `MEDBENCH_OFFICIAL_DIR`, else from the user cache, filled by
downloading from upstream GitHub. Every file is verified by its canonical hash, so a score is
only ever reported against the exact published task set.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
import requests
from filelock import FileLock

from medbench.tasks.task import Presentation, TaskSet, canonical_sha256
from medbench.tasks.task_file import TaskFileError, tasks_from_records

TASKS_FILE = "test_data_v2.json"
FUNCTIONS_FILE = "funcs_v1.json"
PROMPT_FILE = "prompt_template.txt"
ASSET_FILES = (TASKS_FILE, FUNCTIONS_FILE, PROMPT_FILE)

EXPECTED_SHA256 = {
    TASKS_FILE: "36c2d26c3e6cb2f75f644d7a649ac24e7b72d610f086c55b6f50b6395b16485e",
    FUNCTIONS_FILE: "25830697db82c08f4ec09e577819383c12ca3ee9eafba2c3b48359f7a80a8679",
    PROMPT_FILE: "6d006952a997f7b7f7396c82ad05995990cffa42e99240bdeff209b87ccad154",
}

PROMPT_MODULE = "src/server/tasks/medagentbench/__init__.py"
PROMPT_VARIABLE = "MedAgentBench_prompt"
UPSTREAM_PATHS = {
    TASKS_FILE: f"data/medagentbench/{TASKS_FILE}",
    FUNCTIONS_FILE: f"data/medagentbench/{FUNCTIONS_FILE}",
    PROMPT_FILE: PROMPT_MODULE,
}
DEFAULT_DOWNLOAD_BASE = "https://raw.githubusercontent.com/stanfordmlgroup/MedAgentBench/main/"
DOWNLOAD_TIMEOUT_S = 60.0


class OfficialAssetsError(RuntimeError):
    """The official assets could not be obtained or verified; the message says how to provide them."""


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The medbench cache root: argument, else $MEDBENCH_CACHE_DIR, else the platform user cache."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("MEDBENCH_CACHE_DIR") or platformdirs.user_cache_dir("medbench"))


def official_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the official assets are cached: <cache root>/official."""
    return cache_root(cache_dir) / "official"


def _assets_error(file: str, problem: str, cache: Path) -> OfficialAssetsError:
    return OfficialAssetsError(
        f"official asset {file}: {problem}. Expected canonical SHA-256 {EXPECTED_SHA256[file]}. "
        "Provide the official MedAgentBench assets in one of two ways: pass --official-dir "
        "(or set MEDBENCH_OFFICIAL_DIR) to a clone of stanfordmlgroup/MedAgentBench or to a folder "
        f"holding {', '.join(ASSET_FILES)}; or run `python scripts/fetch_official.py` to download "
        f"them into {cache}."
    )


def asset_sha256(file: str, text: str) -> str:
    """Canonical hash: JSON assets hash their canonical JSON, the prompt its UTF-8 text."""
    if file == PROMPT_FILE:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return canonical_sha256(json.loads(text))


def prompt_from_module(source: str) -> str:
    """The prompt string assigned to MedAgentBench_prompt, read with ast (never executed)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == PROMPT_VARIABLE for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise ValueError(f"no string assigned to {PROMPT_VARIABLE}")


def _utf8(data: bytes, file: str, cache: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _assets_error(file, "is not UTF-8 text; the file is damaged", cache) from None


def _verified_text(file: str, text: str, cache: Path) -> str:
    try:
        actual = asset_sha256(file, text)
    except json.JSONDecodeError as error:
        raise _assets_error(file, f"is not valid JSON ({error}); the file looks truncated or damaged", cache) from None
    if actual != EXPECTED_SHA256[file]:
        raise _assets_error(file, f"content hash {actual} does not match", cache)
    return text


def _read_local_asset(folder: Path, file: str, cache: Path) -> str:
    """Read one asset from a flat folder or an upstream clone layout."""
    flat = folder / file
    clone = folder / UPSTREAM_PATHS[file]
    if flat.is_file():
        return _utf8(flat.read_bytes(), file, cache)
    if clone.is_file():
        source = _utf8(clone.read_bytes(), file, cache)
        if file != PROMPT_FILE:
            return source
        try:
            return prompt_from_module(source)
        except (SyntaxError, ValueError) as error:
            raise _assets_error(file, f"cannot read {PROMPT_VARIABLE} from {clone} ({error})", cache) from None
    raise _assets_error(file, f"not found in {folder} (looked for {flat} and {clone})", cache)


def _write_atomically(target: Path, text: str) -> None:
    """Temp file in the same folder + rename, so readers never see a half-written asset."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as temp:
            temp.write(text)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _download_asset(file: str, base: str, cache: Path) -> str:
    url = base.rstrip("/") + "/" + UPSTREAM_PATHS[file]
    try:
        response = requests.get(url, timeout=DOWNLOAD_TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as error:
        raise _assets_error(file, f"download from {url} failed ({error})", cache) from None
    text = _utf8(response.content, file, cache)
    if file != PROMPT_FILE:
        return text
    try:
        return prompt_from_module(text)
    except (SyntaxError, ValueError) as error:
        raise _assets_error(file, f"cannot read {PROMPT_VARIABLE} from {url} ({error})", cache) from None


def fetch_official(cache_dir: str | Path | None = None, download_base: str | None = None) -> Path:
    """Make sure the cache holds all verified assets, downloading what is missing or damaged.

    The download base is the argument, else $MEDBENCH_OFFICIAL_URL, else upstream GitHub (main).
    A file lock keeps concurrent pytest-xdist workers from downloading twice.
    """
    cache = official_cache_dir(cache_dir)
    base = download_base or os.environ.get("MEDBENCH_OFFICIAL_URL") or DEFAULT_DOWNLOAD_BASE
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / ".fetch.lock")):
        for file in ASSET_FILES:
            target = cache / file
            if target.is_file():
                try:
                    _verified_text(file, _utf8(target.read_bytes(), file, cache), cache)
                    continue
                except OfficialAssetsError:
                    target.unlink()
            _write_atomically(target, _verified_text(file, _download_asset(file, base, cache), cache))
    return cache


def _official_texts(
    official_dir: str | Path | None, cache_dir: str | Path | None, download_base: str | None
) -> dict[str, str]:
    cache = official_cache_dir(cache_dir)
    chosen = official_dir or os.environ.get("MEDBENCH_OFFICIAL_DIR")
    folder = Path(chosen) if chosen else fetch_official(cache_dir, download_base)
    if not folder.is_dir():
        raise _assets_error(TASKS_FILE, f"official dir {folder} does not exist", cache)
    return {file: _verified_text(file, _read_local_asset(folder, file, cache), cache) for file in ASSET_FILES}


def _presentation(texts: dict[str, str]) -> Presentation:
    functions: list[dict[str, Any]] = json.loads(texts[FUNCTIONS_FILE])
    return Presentation(prompt_template=texts[PROMPT_FILE], functions=functions, flavour="official")


def official_presentation(
    official_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download_base: str | None = None,
) -> Presentation:
    """The official prompt template and function specs, for task files written against them."""
    return _presentation(_official_texts(official_dir, cache_dir, download_base))


def load_official(
    official_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download_base: str | None = None,
) -> TaskSet:
    """The 300 official tasks in upstream order, with the official prompt and function specs."""
    texts = _official_texts(official_dir, cache_dir, download_base)
    try:
        tasks = tasks_from_records(json.loads(texts[TASKS_FILE]), f"official {TASKS_FILE}")
    except TaskFileError as error:
        raise _assets_error(TASKS_FILE, str(error), official_cache_dir(cache_dir)) from None
    shown = _presentation(texts)
    return TaskSet(
        name="official",
        tasks=tasks,
        prompt_template=shown.prompt_template,
        functions=shown.functions,
        flavour="official",
    )
