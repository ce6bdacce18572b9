"""Reports over runs of the text and the tools protocol: refused together unless --allow-mixed, and
one model in both protocols side by side with `analyze --compare`."""

from __future__ import annotations

import pytest

from helpers.reports import CATEGORIES, run_line, write_model
from medbench.reports import MixedRunsError, analyse, write_reports
from medbench.reports.cli import main

MODES = {
    "task_set": "generated-v1-seed0",
    "task_set_sha256": "abc123",
    "grader": "official",
    "post_mode": "official",
    "max_rounds": 8,
    "strip_think": False,
}


def lines(correct_per_category: int) -> list[dict]:
    return [
        run_line(
            f"{category}_{n}",
            n <= correct_per_category,
            num_turns=2 if n % 2 else 3,
            prompt_tokens=7000,
            completion_tokens=60,
        )
        for category in CATEGORIES
        for n in range(1, 4)
    ]


@pytest.fixture
def results(tmp_path):
    """`reference/` (text, 3 of 3 per category) and `reference/tools/` (tools, 2 of 3), one model."""
    write_model(tmp_path, "reference", lines(3), model="reference", summary={"modes": {**MODES, "protocol": "text"}})
    write_model(
        tmp_path, "reference/tools", lines(2), model="reference", summary={"modes": {**MODES, "protocol": "tools"}}
    )
    return tmp_path


def test_reports_refuse_to_mix_protocols_unless_allow_mixed(results, tmp_path):
    with pytest.raises(MixedRunsError, match="protocol differs: 'text' in reference; 'tools' in reference/tools"):
        write_reports(results, tmp_path / "out")
    assert analyse(results, allow_mixed=True).mode_differences == [
        "protocol differs: 'text' in reference; 'tools' in reference/tools"
    ]


def test_the_analyze_command_refuses_mixed_protocols_with_the_fix(results, capsys):
    assert main([str(results)], command="analyze") == 2
    assert "--allow-mixed" in capsys.readouterr().err


def test_compare_puts_one_model_in_both_protocols_side_by_side(results, capsys):
    assert main([str(results), "--compare", "reference", "reference/tools"], command="analyze") == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("protocol", "correct "))]
    profile = {row[0]: row[1:] for row in rows}
    assert profile == {"protocol": ["text", "tools"], "correct": ["30", "20"]}
    overall = next(line for line in out.splitlines() if line.startswith("all "))
    assert overall.split() == ["all", "100.0", "66.7", "33.3"]
    assert "alone solved 10 task(s)" in out


def test_a_folder_slug_names_its_run_even_when_the_model_name_is_shared(tmp_path, capsys):
    """`reference` is the text run's folder although the better tools run, listed first, is also model `reference`."""
    write_model(tmp_path, "reference", lines(2), model="reference", summary={"modes": {**MODES, "protocol": "text"}})
    write_model(
        tmp_path, "reference/tools", lines(3), model="reference", summary={"modes": {**MODES, "protocol": "tools"}}
    )
    assert main([str(tmp_path), "--compare", "reference", "reference/tools"], command="analyze") == 0
    out = capsys.readouterr().out
    protocols = next(line for line in out.splitlines() if line.startswith("protocol")).split()
    assert protocols == ["protocol", "text", "tools"]


def test_compare_still_refuses_runs_of_another_grader_unless_allow_mixed(results, capsys):
    write_model(results, "other", lines(3), summary={"modes": {**MODES, "protocol": "tools", "grader": "corrected"}})
    assert main([str(results), "--compare", "reference", "other"], command="analyze") == 2
    assert "grader differs" in capsys.readouterr().err
    assert main([str(results), "--compare", "reference", "other", "--allow-mixed"], command="analyze") == 0
