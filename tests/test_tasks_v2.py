"""The official MedAgentBench v2 task set: obtained from a folder, a clone or a download, always
verified by hash, refused with a message naming the fix when anything differs."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.fake_http import base_url, serving, static_files
from helpers.official import OFFICIAL_V2_DIR, needs_official_v2
from medbench.tasks import TaskFileError, V2AssetsError, fetch_v2, load_task_set, load_v2
from medbench.tasks.v2 import EXPECTED_SHA256, TASKS_FILE, UPSTREAM_PATHS, v2_system_prompts

SHARED = OFFICIAL_V2_DIR
ASSETS = ("new_patient_tasks.json", "new_system.txt", "system.txt")

pytestmark = needs_official_v2


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No user settings leak in: a private cache, no v2 folder or download URL preset."""
    monkeypatch.delenv("MEDBENCH_V2_DIR", raising=False)
    monkeypatch.delenv("MEDBENCH_V2_URL", raising=False)
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The upstream repository's layout (medagentbench_v2/src/...), holding the reference copies."""
    root = tmp_path / "medagentbenchv2"
    for name in ASSETS:
        target = root / UPSTREAM_PATHS[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((SHARED / name).read_bytes())
    return root


@pytest.fixture
def upstream(clone: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback stand-in for raw.githubusercontent.com serving the clone."""
    requested: list[str] = []
    with serving(static_files(clone, requested)) as server:
        yield base_url(server), requested


def test_the_shared_folder_gives_300_v2_tasks_in_upstream_order(isolated_env: Path) -> None:
    task_set = load_v2(official_dir=SHARED)
    records = json.loads((SHARED / TASKS_FILE).read_text(encoding="utf-8"))
    assert [t.id for t in task_set.tasks] == [r["id"] for r in records]
    assert len(task_set.tasks) == 300 and len({t.eval_MRN for t in task_set.tasks}) == 98
    assert [t.category for t in task_set.tasks] == [int(r["id"][4:].split("_")[0]) for r in records]
    first = task_set.tasks[0]
    assert (first.instruction, first.context, first.eval_MRN) == (
        records[0]["instruction"],
        records[0]["context"],
        records[0]["eval_MRN"],
    )
    assert (task_set.name, task_set.benchmark, task_set.flavour, task_set.functions) == ("v2", "v2", "official", [])


def test_the_system_prompt_is_upstreams_new_system_txt_byte_for_byte(isolated_env: Path) -> None:
    task_set = load_v2(official_dir=SHARED)
    assert task_set.prompt_template.encode("utf-8") == (SHARED / "new_system.txt").read_bytes()
    prompts = v2_system_prompts(official_dir=SHARED)
    assert prompts["system.txt"].encode("utf-8") == (SHARED / "system.txt").read_bytes()


def test_a_clone_of_the_upstream_repository_loads(clone: Path, isolated_env: Path) -> None:
    assert load_v2(official_dir=clone).sha256 == load_v2(official_dir=SHARED).sha256


def test_the_v2_dir_environment_variable_is_honoured(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("MEDBENCH_V2_DIR", str(SHARED))
    assert len(load_task_set("v2").tasks) == 300


def test_download_fills_the_cache_and_the_next_load_needs_no_network(
    upstream: tuple[str, list[str]], isolated_env: Path
) -> None:
    url, requested = upstream
    cache = fetch_v2(download_base=url)
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == sorted(ASSETS)
    assert len(requested) == 3
    assert len(load_v2(download_base="http://127.0.0.1:9/").tasks) == 300  # served from the cache
    assert len(requested) == 3


def test_the_download_url_environment_variable_is_honoured(
    upstream: tuple[str, list[str]], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, requested = upstream
    monkeypatch.setenv("MEDBENCH_V2_URL", url)
    assert len(load_task_set("v2").tasks) == 300
    assert any(path.endswith("new_patient_tasks.json") for path in requested)


def test_an_edited_task_file_is_refused_naming_file_expected_hash_and_fix(clone: Path, isolated_env: Path) -> None:
    path = clone / UPSTREAM_PATHS[TASKS_FILE]
    records = json.loads(path.read_text(encoding="utf-8"))
    records[4]["eval_MRN"] = "S0000000"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(V2AssetsError) as error:
        load_v2(official_dir=clone)
    message = str(error.value)
    assert "new_patient_tasks.json" in message and "does not match" in message
    assert EXPECTED_SHA256[TASKS_FILE] in message
    assert "--official-dir" in message and "MEDBENCH_V2_DIR" in message


def test_a_reformatted_but_identical_task_file_is_accepted(clone: Path, isolated_env: Path) -> None:
    path = clone / UPSTREAM_PATHS[TASKS_FILE]
    path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=4), encoding="utf-8")
    assert len(load_v2(official_dir=clone).tasks) == 300


def test_a_prompt_differing_by_one_byte_is_refused(clone: Path, isolated_env: Path) -> None:
    path = clone / UPSTREAM_PATHS["new_system.txt"]
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    with pytest.raises(V2AssetsError, match=r"new_system\.txt.*does not match.*b1e7fda6"):
        load_v2(official_dir=clone)


def test_a_truncated_task_file_is_refused_as_damaged(clone: Path, isolated_env: Path) -> None:
    path = clone / UPSTREAM_PATHS[TASKS_FILE]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(V2AssetsError, match=r"new_patient_tasks\.json: is not valid JSON.*truncated or damaged"):
        load_v2(official_dir=clone)


def test_a_missing_file_says_where_it_looked(tmp_path: Path, isolated_env: Path) -> None:
    (tmp_path / "new_system.txt").write_bytes((SHARED / "new_system.txt").read_bytes())
    with pytest.raises(V2AssetsError, match=r"new_patient_tasks\.json: not found in .*looked for"):
        load_v2(official_dir=tmp_path)


def test_a_folder_that_does_not_exist_is_named(tmp_path: Path, isolated_env: Path) -> None:
    with pytest.raises(V2AssetsError, match=r"folder .*nowhere does not exist"):
        load_v2(official_dir=tmp_path / "nowhere")


def test_a_wrong_download_fails_and_leaves_nothing_in_the_cache(
    clone: Path, upstream: tuple[str, list[str]], isolated_env: Path
) -> None:
    url, _ = upstream
    path = clone / UPSTREAM_PATHS["system.txt"]
    path.write_bytes(path.read_bytes() + b"extra")
    with pytest.raises(V2AssetsError, match=r"system\.txt.*does not match"):
        fetch_v2(download_base=url)
    assert not (isolated_env / "official-v2" / "system.txt").exists()
    assert not [p for p in (isolated_env / "official-v2").iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_cache_file_is_downloaded_again(upstream: tuple[str, list[str]], isolated_env: Path) -> None:
    url, requested = upstream
    cache = fetch_v2(download_base=url)
    (cache / TASKS_FILE).write_text("[]", encoding="utf-8")
    fetch_v2(download_base=url)
    assert len(load_v2(download_base=url).tasks) == 300
    assert sum(path.endswith(TASKS_FILE) for path in requested) == 2


def test_no_network_gives_the_clear_error(isolated_env: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    with pytest.raises(V2AssetsError, match=r"download from http://127\.0\.0\.1:\d+/medagentbench_v2/.* failed"):
        load_v2(download_base=url)


def test_unknown_task_spec_names_the_v2_choices(isolated_env: Path) -> None:
    with pytest.raises(TaskFileError, match="'v2', 'generated-v2'"):
        load_task_set("v3")
