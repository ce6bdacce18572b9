"""What a newcomer meets first, each as it was reported (issue 18) and as it must behave now.

- the EHR build's progress line ends with a newline and shows total, percentage and rate;
- a setup error is one message and exit 4, with or without xdist, printed once;
- a name one typo away from a built-in model says so and lists the built-in names;
- `--base-url` beside a built-in model is ignored, with a warning, and `--help` states its real default;
- `python -m medbench run` is the benchmark without pytest, `python -m medbench cache` shows and frees the cache;
- a test that needs the official assets skips without them, except in CI, where that fails the run.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from medbench.cache import clear, entries
from medbench.ehr.progress import EXPECTED_RESOURCES, BuildProgress

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: nothing listens on loopback


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the EHR build's progress line ---------------------------------------------------------------


def test_on_a_terminal_the_progress_line_shows_total_percentage_and_rate_and_ends_with_a_newline() -> None:
    clock, screen = Clock(), io.StringIO()
    progress = BuildProgress("building", "full", stream=screen, tty=True, clock=clock)
    clock.now += 20
    progress(356_300)
    shown = screen.getvalue()
    assert shown.startswith("\r") and not shown.endswith("\n")
    assert f"356,300 of about {EXPECTED_RESOURCES['full']:,} resources (50%)" in shown
    assert "17,815/s" in shown and "20 s" in shown and "about 20 s left" in shown
    clock.now += 22
    progress.finish()
    last = screen.getvalue().split("\r")[-1]
    assert last.endswith("\n") and "done, 356,300 resources in 42 s" in last


def test_the_percentage_never_claims_the_end_before_the_build_says_so() -> None:
    clock, screen = Clock(), io.StringIO()
    progress = BuildProgress("building", "small", stream=screen, tty=True, clock=clock)
    clock.now += 1
    progress(EXPECTED_RESOURCES["small"] * 2)  # another seed may write more than the estimate
    assert "(99%)" in screen.getvalue()


def test_without_a_terminal_a_line_every_ten_seconds_and_nothing_when_the_database_was_cached() -> None:
    clock, lines = Clock(), []
    progress = BuildProgress("building", "medium", write_line=lines.append, tty=False, clock=clock)
    for _ in range(30):
        clock.now += 1
        progress(1_000)
    assert len(lines) == 3 and all("resources" in line and "\r" not in line for line in lines)
    cached = BuildProgress("building", "medium", write_line=lines.append, tty=False, clock=clock)
    cached.finish()
    assert len(lines) == 3


# --- setup errors, model names, --base-url -------------------------------------------------------


@pytest.fixture
def bench(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["medbench.plugin"]\n')
    pytester.makepyfile(test_medagentbench=(ROOT / "tests_bench" / "test_medagentbench.py").read_text())
    return pytester


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_missing_task_file_is_one_message_and_exit_4(bench: pytest.Pytester, xdist: tuple[str, ...]) -> None:
    result = bench.runpytest_subprocess(
        "--model=reference", "--tasks=nonexistent.json", "-p", "no:cacheprovider", *xdist
    )
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == 4
    assert output.count("--tasks='nonexistent.json'") == 1
    assert "Traceback" not in output and "Interrupted" not in output and "error during collection" not in output


def test_missing_official_files_are_one_message_and_exit_4(bench: pytest.Pytester, tmp_path: Path) -> None:
    result = bench.runpytest_subprocess(
        "--model=reference", "--tasks=official", f"--official-dir={tmp_path / 'none'}", "-p", "no:cacheprovider"
    )
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == 4
    assert output.count("does not exist") == 1 and "--official-dir" in output
    assert "Traceback" not in output


def test_a_misspelt_built_in_model_is_named_with_the_built_in_names(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess(
        "--model=referense",
        f"--base-url={UNREACHABLE}",
        "--ehr-scale=small",
        "-p",
        "no:cacheprovider",
        "-k",
        "task1_1]",
    )
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == 4
    assert "not reachable" in output
    assert "close to --model=reference" in output and "the built-in models are reference, do-nothing, give-up" in output


def test_a_base_url_beside_a_built_in_model_is_ignored_with_a_warning(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess(
        "--model=reference",
        f"--base-url={UNREACHABLE}",
        "--ehr-scale=small",
        "--results-dir=results",
        "--task-id=task1_1",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"medbench: warning: --base-url={UNREACHABLE} is ignored: --model=reference is a built-in*"]
    )


def test_help_states_the_real_default_of_base_url(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess("--help")
    text = " ".join(" ".join(result.outlines).split())
    assert "default: $OPENAI_BASE_URL, else https://api.openai.com/v1" in text


# --- python -m medbench: run without pytest, and the cache --------------------------------------


def medbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medbench", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_python_dash_m_medbench_run_is_the_benchmark_without_pytest(tmp_path: Path) -> None:
    done = medbench(
        "run", "--model=reference", "--ehr-scale=small", "--task-id=task1_1,task9_2", "--min-accuracy=1.0", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "[1/2] task1_1 correct" in done.stdout and "[2/2] task9_2 correct" in done.stdout
    assert "2 of 2 correct" in done.stdout and "gates passed" in done.stdout
    assert (tmp_path / "results" / "reference" / "summary.json").is_file()


def test_python_dash_m_medbench_run_says_a_setup_error_once_with_exit_4(tmp_path: Path) -> None:
    done = medbench("run", "--model=reference", "--tasks=nonexistent.json", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stderr.count("nonexistent.json") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()


def test_python_dash_m_medbench_run_refuses_a_bad_option_value_naming_it(tmp_path: Path) -> None:
    done = medbench("run", "--model=reference", "--concurrency=0", cwd=tmp_path)
    assert done.returncode == 4 and "--concurrency must be at least 1, got 0" in done.stderr


def fill_cache(root: Path) -> None:
    (root / "ehr").mkdir(parents=True)
    (root / "ehr" / "ehr-1-full-0.sqlite").write_bytes(b"x" * 3_000_000)
    (root / "ehr" / "ehr-1-full-0.sqlite.lock").write_text("")
    (root / "ehr" / "ehr-1-small-0.sqlite").write_bytes(b"x" * 20_000)
    (root / "official").mkdir()
    (root / "official" / "test_data_v2.json").write_bytes(b"x" * 5_000)
    (root / "official-v2").mkdir()
    (root / "official-v2" / "new_patient_tasks.json").write_bytes(b"x" * 2_000)


def test_cache_info_shows_each_entry_with_its_size_and_the_total(tmp_path: Path) -> None:
    fill_cache(tmp_path)
    done = medbench("cache", "info", "--cache-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"medbench cache: {tmp_path}" in done.stdout
    assert "3.0 MB  ehr/ehr-1-full-0.sqlite" in done.stdout and "5.0 KB  official" in done.stdout
    assert "2.0 KB  official-v2" in done.stdout
    assert "3.0 MB  in all (4 entries)" in done.stdout


def test_cache_clear_deletes_everything_and_says_how_much_was_freed(tmp_path: Path) -> None:
    fill_cache(tmp_path)
    dry = medbench("cache", "clear", "--dry-run", "--cache-dir", str(tmp_path), cwd=tmp_path)
    assert "would delete 4 entries, 3.0 MB in all" in dry.stdout
    assert (tmp_path / "ehr" / "ehr-1-full-0.sqlite").exists()
    done = medbench("cache", "clear", "--cache-dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0 and "deleted 4 entries, 3.0 MB in all" in done.stdout
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["ehr"]


def test_cache_clear_can_keep_the_official_assets_and_leaves_a_database_being_built(tmp_path: Path) -> None:
    fill_cache(tmp_path)
    with FileLock(str(tmp_path / "ehr" / "ehr-1-full-0.sqlite.lock")):
        removed, kept = clear(tmp_path, ("ehr",))
    assert [entry.path.name for entry in removed] == ["ehr-1-small-0.sqlite"]
    assert kept == [f"{tmp_path / 'ehr' / 'ehr-1-full-0.sqlite'} (in use: a session is building it)"]
    assert [entry.part for entry in entries(tmp_path)] == ["ehr", "official", "official"]


# --- official assets: skipped for a newcomer, required in CI -------------------------------------


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_test_needing_the_official_assets_skips_without_them_but_fails_in_ci(tmp_path: Path, ci: str) -> None:
    env = {**os.environ, "MEDBENCH_OFFICIAL_DIR": str(tmp_path / "absent"), "CI": ci}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_agent_prompt.py", "-p", "no:cacheprovider", "-q", "-rs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if ci:
        assert done.returncode == 1 and "CI=true, yet this test was skipped" in done.stdout
    else:
        assert done.returncode == 0, done.stdout[-2000:]
        assert "skipped" in done.stdout and "official assets not found at" in done.stdout
