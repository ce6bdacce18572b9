"""Official assets: obtained from a clone, a flat folder or a download, and always verified."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.fake_http import base_url, serving, static_files
from helpers.official import OFFICIAL_DIR, needs_official
from medbench.tasks import (
    OfficialAssetsError,
    fetch_official,
    load_official,
    load_task_set,
)
from medbench.tasks.official import EXPECTED_SHA256, PROMPT_MODULE, prompt_from_module

SHARED = OFFICIAL_DIR

pytestmark = needs_official


def write_clone(root: Path) -> Path:
    """An upstream clone layout; the prompt module would fail loudly if it were ever executed."""
    data = root / "data" / "medagentbench"
    data.mkdir(parents=True)
    for name in ("test_data_v2.json", "funcs_v1.json"):
        (data / name).write_bytes((SHARED / name).read_bytes())
    prompt = (SHARED / "prompt_template.txt").read_text(encoding="utf-8")
    module = root / PROMPT_MODULE
    module.parent.mkdir(parents=True)
    module.write_text(
        "raise SystemExit('the prompt module must be read, not executed')\n"
        f"MedAgentBench_prompt = {prompt!r}\n"
        "OTHER = 'not the prompt'\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return write_clone(tmp_path / "MedAgentBench")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No user settings leak in: the cache is private and no official dir or URL is preset."""
    monkeypatch.delenv("MEDBENCH_OFFICIAL_DIR", raising=False)
    monkeypatch.delenv("MEDBENCH_OFFICIAL_URL", raising=False)
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def unreachable_url() -> str:
    """A loopback URL nobody listens on: downloads from it fail like an offline machine's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


@pytest.fixture
def upstream(clone: Path) -> Iterator[tuple[str, list[str]]]:
    """A local stand-in for raw.githubusercontent.com serving the clone layout."""
    requested: list[str] = []
    with serving(static_files(clone, requested)) as server:
        yield base_url(server), requested


def test_clone_layout_gives_300_official_tasks_in_upstream_order(clone: Path, isolated_env: Path) -> None:
    task_set = load_official(official_dir=clone)
    upstream_ids = [record["id"] for record in json.loads((SHARED / "test_data_v2.json").read_text(encoding="utf-8"))]
    assert [task.id for task in task_set.tasks] == upstream_ids
    assert len(task_set.tasks) == 300
    assert task_set.tasks[0].id == "task1_1" and task_set.tasks[-1].id == "task10_30"
    assert task_set.flavour == "official"
    assert task_set.sha256 == EXPECTED_SHA256["test_data_v2.json"]


def test_category_comes_from_the_id(clone: Path, isolated_env: Path) -> None:
    task_set = load_official(official_dir=clone)
    assert task_set.by_id("task5_12").category == 5
    assert task_set.by_id("task10_1").category == 10
    assert {task.category for task in task_set.tasks} == set(range(1, 11))


def test_prompt_is_read_from_the_clone_module_without_executing_it(clone: Path, isolated_env: Path) -> None:
    task_set = load_official(official_dir=clone)
    assert task_set.prompt_template == (SHARED / "prompt_template.txt").read_text(encoding="utf-8")
    assert len(task_set.functions) == 9


def test_flat_folder_such_as_shared_reference_copy_loads(isolated_env: Path) -> None:
    task_set = load_official(official_dir=SHARED)
    assert len(task_set.tasks) == 300
    assert not isolated_env.exists(), "a local official dir must not touch the cache"


def test_official_dir_environment_variable_is_honoured(
    clone: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDBENCH_OFFICIAL_DIR", str(clone))
    assert load_task_set("official").sha256 == EXPECTED_SHA256["test_data_v2.json"]


def test_download_fills_the_cache_as_a_flat_folder(upstream: tuple[str, list[str]], isolated_env: Path) -> None:
    url, requested = upstream
    task_set = load_official(download_base=url)
    assert len(task_set.tasks) == 300
    cached = sorted(path.name for path in (isolated_env / "official").iterdir() if not path.name.startswith("."))
    assert cached == ["funcs_v1.json", "prompt_template.txt", "test_data_v2.json"]
    assert (isolated_env / "official" / "prompt_template.txt").read_text(encoding="utf-8") == task_set.prompt_template
    assert "/" + PROMPT_MODULE in requested


def test_second_load_uses_the_cache_without_downloading(upstream: tuple[str, list[str]], isolated_env: Path) -> None:
    url, requested = upstream
    fetch_official(download_base=url)
    downloads = len(requested)
    load_official(download_base=url)
    assert len(requested) == downloads


def test_download_url_environment_variable_is_honoured(
    upstream: tuple[str, list[str]], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, requested = upstream
    monkeypatch.setenv("MEDBENCH_OFFICIAL_URL", url)
    assert fetch_official() == isolated_env / "official"
    assert requested


def test_damaged_cache_file_is_downloaded_again(upstream: tuple[str, list[str]], isolated_env: Path) -> None:
    url, _ = upstream
    cache = fetch_official(download_base=url)
    (cache / "funcs_v1.json").write_text("[]", encoding="utf-8")
    assert len(load_official(download_base=url).functions) == 9


def test_download_with_wrong_content_fails_and_leaves_nothing_in_cache(
    clone: Path, upstream: tuple[str, list[str]], isolated_env: Path
) -> None:
    url, _ = upstream
    records = json.loads((clone / "data/medagentbench/test_data_v2.json").read_text(encoding="utf-8"))
    records[0]["sol"] = ["S0000000"]
    (clone / "data/medagentbench/test_data_v2.json").write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(OfficialAssetsError) as error:
        fetch_official(download_base=url)
    message = str(error.value)
    assert "test_data_v2.json" in message
    assert EXPECTED_SHA256["test_data_v2.json"] in message
    assert "--official-dir" in message and "MEDBENCH_OFFICIAL_DIR" in message
    assert "scripts/fetch_official.py" in message
    leftovers = [path.name for path in (isolated_env / "official").iterdir() if path.name != ".fetch.lock"]
    assert "test_data_v2.json" not in leftovers
    assert not [name for name in leftovers if name.endswith(".tmp")]


def test_truncated_download_is_rejected_naming_the_file(
    clone: Path, upstream: tuple[str, list[str]], isolated_env: Path
) -> None:
    url, _ = upstream
    funcs = clone / "data/medagentbench/funcs_v1.json"
    funcs.write_bytes(funcs.read_bytes()[:500])
    with pytest.raises(OfficialAssetsError, match=r"funcs_v1\.json.*truncated"):
        load_official(download_base=url)
    assert not (isolated_env / "official" / "funcs_v1.json").exists()


def test_missing_upstream_file_gives_the_clear_error(
    clone: Path, upstream: tuple[str, list[str]], isolated_env: Path
) -> None:
    url, _ = upstream
    (clone / PROMPT_MODULE).unlink()
    with pytest.raises(OfficialAssetsError, match=r"prompt_template\.txt: download from .* failed.*404"):
        load_official(download_base=url)


def test_no_network_gives_the_clear_error(isolated_env: Path) -> None:
    url = unreachable_url()
    with pytest.raises(OfficialAssetsError, match=r"test_data_v2\.json: download from .* failed") as error:
        load_official(download_base=url)
    assert "python scripts/fetch_official.py" in str(error.value)


def test_hash_mismatch_in_local_dir_names_file_and_expected_hash(clone: Path, isolated_env: Path) -> None:
    funcs = clone / "data/medagentbench/funcs_v1.json"
    specs = json.loads(funcs.read_text(encoding="utf-8"))
    specs[0]["description"] += " edited"
    funcs.write_text(json.dumps(specs), encoding="utf-8")
    with pytest.raises(OfficialAssetsError, match=EXPECTED_SHA256["funcs_v1.json"]):
        load_official(official_dir=clone)


def test_reformatted_but_identical_json_still_verifies(clone: Path, isolated_env: Path) -> None:
    tasks = clone / "data/medagentbench/test_data_v2.json"
    tasks.write_text(json.dumps(json.loads(tasks.read_text(encoding="utf-8")), indent=4), encoding="utf-8")
    assert len(load_official(official_dir=clone).tasks) == 300


def test_missing_file_in_local_dir_says_where_it_looked(tmp_path: Path, isolated_env: Path) -> None:
    with pytest.raises(OfficialAssetsError, match=r"test_data_v2\.json: not found in"):
        load_official(official_dir=tmp_path)


def test_prompt_variable_must_be_a_plain_string() -> None:
    assert prompt_from_module("A = 1\nMedAgentBench_prompt = 'hi {api_base}'\n") == "hi {api_base}"
    with pytest.raises(ValueError, match="MedAgentBench_prompt"):
        prompt_from_module("other = 'x'\n")
    with pytest.raises(ValueError):
        prompt_from_module("MedAgentBench_prompt = build_prompt()\n")


def test_fetch_script_prefills_the_cache(upstream: tuple[str, list[str]], isolated_env: Path) -> None:
    url, _ = upstream
    script = Path(__file__).resolve().parents[1] / "scripts" / "fetch_official.py"
    done = subprocess.run(
        [sys.executable, str(script), "--download-base", url], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout
    assert len(load_official(download_base=unreachable_url()).tasks) == 300, "served from the cache"


def test_fetch_script_failure_exits_1_with_the_clear_error(isolated_env: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "fetch_official.py"
    done = subprocess.run(
        [sys.executable, str(script), "--download-base", unreachable_url()], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "--official-dir" in done.stderr and "test_data_v2.json" in done.stderr


def test_binary_garbage_in_local_dir_is_reported_as_damaged(clone: Path, isolated_env: Path) -> None:
    (clone / "data/medagentbench/test_data_v2.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(OfficialAssetsError, match=r"test_data_v2\.json: is not UTF-8 text"):
        load_official(official_dir=clone)
