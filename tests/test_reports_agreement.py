"""The agreement report: state verdicts beside the transcript graders' verdicts on the same attempts, and why they differ.

Each adversarial built-in model runs a few generated tasks through the real runner in a
`--grader=state` run folder; the report must count the disagreements and name their cause.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.state_fixtures import TextModel, magnesium_24h, pick, run_attempt
from medbench.models.builtin.adversaries import ADVERSARIES
from medbench.reports.agreement import NotStateRun, agreement, agreement_report
from medbench.reports.cli import main

pytest_plugins = ["helpers.state_fixtures"]  # its module fixtures: environment, population, task_set


def run_folder(environment, task_set, population, tmp_path: Path, model: str, categories: tuple[int, ...]) -> Path:
    folder = tmp_path / model
    low_mg = pick(task_set, 5, lambda t: (magnesium_24h(population, t.eval_MRN) or 9) <= 1.9)
    for category in categories:
        task = low_mg if category == 5 else pick(task_set, category, lambda t: True)
        run_attempt(environment, task_set, task, TextModel(ADVERSARIES[model]), folder, session=model)
    return folder


def causes(folder: Path) -> dict[tuple[str, bool, bool, str], list[str]]:
    return dict(agreement(folder).causes)


def test_a_refused_post_in_a_read_only_task_is_a_disagreement_with_official_only(
    environment, task_set, population, tmp_path: Path
) -> None:
    folder = run_folder(environment, task_set, population, tmp_path, "reference-refused-post", (1, 5))
    report = agreement(folder)
    assert report.attempts == 2 and report.state_correct == 2
    assert report.correct == {"official": 1, "corrected": 2}
    (((mode, state, other, cause), tasks),) = report.causes.items()
    assert (mode, state, other) == ("official", True, False) and tasks == [pick(task_set, 1, lambda t: True).id]
    assert cause.startswith("a POST the server refused")


def test_fenced_and_query_url_posts_pass_state_and_fail_the_transcript_reading(
    environment, task_set, population, tmp_path: Path
) -> None:
    fenced = causes(run_folder(environment, task_set, population, tmp_path, "reference-fenced-posts", (3, 8)))
    assert [(key[0], len(ids)) for key, ids in fenced.items()] == [("official", 2)]
    assert next(iter(fenced))[3].startswith("a fenced POST")
    query = causes(run_folder(environment, task_set, population, tmp_path, "reference-query-posts", (3,)))
    assert sorted(key[0] for key in query) == ["corrected", "official"]
    assert all(key[1:3] == (True, False) and key[3].startswith("a POST url with a query string") for key in query)


def test_duplicate_posts_fail_every_grader_so_they_agree(environment, task_set, population, tmp_path: Path) -> None:
    folder = run_folder(environment, task_set, population, tmp_path, "reference-duplicate-posts", (3, 5))
    report = agreement(folder)
    assert report.state_correct == 0 and report.agreeing("official") == 2 and report.agreeing("corrected") == 2
    assert not report.causes


def test_the_cli_prints_the_table_and_refuses_a_run_of_another_grader(
    environment, task_set, population, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_folder(environment, task_set, population, tmp_path / "results", "reference-refused-post", (2,))
    other = tmp_path / "results" / "official-run"
    run_attempt(
        environment,
        task_set,
        pick(task_set, 2, lambda t: True),
        TextModel(ADVERSARIES["reference-fenced-posts"]),
        other,
        grader="official",
        post_mode="official",
    )
    assert main(["agreement", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "| reference-refused-post | 1 | 1 | 0 | 1 | 0 | 1 |" in out
    assert "a POST the server refused" in out
    data = json.loads(agreement_report([tmp_path / "results"], as_json=True))
    assert [run["model"] for run in data] == ["reference-refused-post"]  # the official run is skipped
    with pytest.raises(NotStateRun, match="not a --grader=state run"):
        agreement_report([other])
    assert main(["agreement", str(other)]) == 2
