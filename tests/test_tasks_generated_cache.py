"""The generated task set is kept in the cache: drawn once, then read back identical, never stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from medbench.ehr.population import build_population
from medbench.tasks import generated_cache
from medbench.tasks.generated import generate_task_set
from medbench.tasks.generated_cache import cached_task_set_path, load_generated_task_set


def test_a_task_set_read_from_the_cache_equals_the_one_drawn_from_the_population(tmp_path: Path) -> None:
    drawn, population = load_generated_task_set(0, "small", 3, cache_dir=tmp_path)
    assert population is not None  # built to draw the tasks, handed on for the database
    again, no_population = load_generated_task_set(0, "small", 3, cache_dir=tmp_path)
    assert no_population is None
    assert again == drawn
    assert again.sha256 == drawn.sha256 == generate_task_set(3, build_population(seed=0, scale="small")).sha256
    assert (again.prompt_template, again.functions, again.flavour) == (
        drawn.prompt_template,
        drawn.functions,
        drawn.flavour,
    )


def test_seeds_and_scale_each_have_their_own_entry(tmp_path: Path) -> None:
    paths = {
        cached_task_set_path(0, "small", 0, tmp_path),
        cached_task_set_path(1, "small", 0, tmp_path),
        cached_task_set_path(0, "full", 0, tmp_path),
        cached_task_set_path(0, "small", 1, tmp_path),
    }
    assert len(paths) == 4


def test_an_unreadable_entry_is_drawn_again_and_replaced(tmp_path: Path) -> None:
    drawn, _ = load_generated_task_set(0, "small", 0, cache_dir=tmp_path)
    path = cached_task_set_path(0, "small", 0, tmp_path)
    path.write_text('{"name": "torn', encoding="utf-8")
    again, population = load_generated_task_set(0, "small", 0, cache_dir=tmp_path)
    assert population is not None
    assert again == drawn
    assert load_generated_task_set(0, "small", 0, cache_dir=tmp_path)[1] is None


def test_changing_any_generator_source_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "medbench"
    for name in ("ehr", "tasks", "data"):
        (package / name).mkdir(parents=True)
        (package / name / "module.py").write_text("X = 1\n")
    (package / "clock.py").write_text("NOW = 1\n")
    monkeypatch.setattr(generated_cache, "_PACKAGE", package)
    generated_cache.generator_digest.cache_clear()
    try:
        before = generated_cache.generator_digest()
        (package / "ehr" / "module.py").write_text("X = 2\n")
        generated_cache.generator_digest.cache_clear()
        assert generated_cache.generator_digest() != before
    finally:
        generated_cache.generator_digest.cache_clear()


def test_finding_a_cached_database_imports_neither_the_generator_nor_faker() -> None:
    code = (
        "import sys, medbench.ehr.cache, medbench.environment.provision, medbench.ehr.seating\n"
        "medbench.ehr.cache.database_path(0, 'small')\n"
        "print(sorted(m for m in ('faker', 'medbench.ehr.population') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
