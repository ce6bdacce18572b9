"""medbench as an installed package: the wheel holds every file the package reads, and pytest finds the
plugin through its `pytest11` entry point, once, whether or not a conftest.py also names it.

The full check -- a wheel installed (not editable) into a fresh environment, running the benchmark
from folders without the source -- is `.ci/wheel-check`, run by CI (it installs from PyPI).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

COUNT_REGISTRATIONS = """
import medbench.plugin

def test_the_plugin_module_is_registered_once(pytestconfig):
    names = [name for name, plugin in pytestconfig.pluginmanager.list_name_plugin() if plugin is medbench.plugin]
    assert names == ["medbench.plugin"]

def test_its_fixtures_are_there(medbench_settings):
    assert medbench_settings.model == "reference"
"""


def test_the_plugin_is_declared_as_a_pytest11_entry_point_named_after_its_module() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert declared.get("medbench.plugin") == "medbench.plugin"


def test_without_a_conftest_the_options_exist_through_the_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--model=NAME*", "*--ehr-scale*"])


def test_a_conftest_naming_the_plugin_does_not_register_it_twice(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["medbench.plugin"]\n')
    pytester.makepyfile(test_registration=COUNT_REGISTRATIONS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_with_plugin_autoload_disabled_the_conftest_still_loads_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["medbench.plugin"]\n')
    pytester.makepyfile(test_registration=COUNT_REGISTRATIONS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    """Prompts, catalogs, situations, model metadata and viewer assets are read through
    medbench.package_data; a file missing from the wheel only shows once installed."""
    pytest.importorskip("setuptools", minversion="69", reason="needs the dev extra (pip install -e '.[dev]')")
    source = tmp_path / "source"  # a clean copy: an in-tree build/ folder could hide a missing file
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "medbench", source / "medbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("medbench-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("medbench/")}
    package = {path.relative_to(source).as_posix() for path in (source / "medbench").rglob("*") if path.is_file()}
    assert package - shipped == set()
    assert {"medbench/data/prompt_generated.txt", "medbench/data/viewer/page.html", "medbench/py.typed"} <= shipped
    metadata = next(name for name in zipfile.ZipFile(wheel).namelist() if name.endswith("entry_points.txt"))
    entry_text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "[pytest11]" in entry_text and "medbench.plugin = medbench.plugin" in entry_text
