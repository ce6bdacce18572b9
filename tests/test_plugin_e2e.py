"""The benchmark end to end: real reference model server, real embedded FHIR server, real graders.

Small EHR and a handful of tasks per test, so these stay quick; the full 300-task run is the
main job (`pytest tests_bench --model=reference -n 2`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.official import OFFICIAL_DIR, needs_official

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SELECTION = [
    f"test_medagentbench.py::test_task[{task_id}]"
    for task_id in ("task1_1", "task2_1", "task3_1", "task5_1", "task9_1", "task10_1")
]


@pytest.fixture
def bench(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["medbench.plugin"]\n')
    pytester.makepyfile(test_medagentbench=(ROOT / "tests_bench" / "test_medagentbench.py").read_text())
    return pytester


def summary_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "results" / "reference" / "summary.json").read_text())


def test_reference_model_passes_generated_tasks_on_the_embedded_server_with_xdist(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess(
        "--model=reference", "--ehr-scale=small", "--results-dir=results", "-n", "2", "--min-accuracy=1.0", *SELECTION
    )
    result.assert_outcomes(passed=6)
    summary = summary_of(bench)
    assert summary["total"] == 6 and summary["correct"] == 6
    assert summary["task_set"]["name"].startswith("generated") and summary["task_set"]["task_count"] == 300
    assert summary["environment"]["kind"] == "embedded" and summary["environment"]["seating"] == "none"
    assert summary["environment"]["fingerprint"].startswith("embedded:")
    transcripts = (bench.path / "results" / "reference" / "transcripts.jsonl").read_text().splitlines()
    assert all("http://localhost:8080/fhir/" in json.loads(line)["history"][0]["content"] for line in transcripts)


@needs_official
def test_official_tasks_run_on_the_seated_synthetic_ehr(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess(
        "--model=reference",
        "--ehr-scale=small",
        "--results-dir=results",
        "--tasks=official",
        f"--official-dir={OFFICIAL_DIR}",
        *SELECTION,
    )
    result.assert_outcomes(passed=6)
    summary = summary_of(bench)
    assert not summary["task_set"]["name"].startswith("generated")
    assert summary["environment"]["seating"] == "situations"
    assert summary["comparability"]["label"] == "official tasks, real situations, synthetic charts"


def test_a_task_file_of_other_tasks_runs_on_the_plain_seating_and_says_so(bench: pytest.Pytester) -> None:
    tasks = [
        {
            "id": "task2_1",
            "instruction": "What's the age of the patient with MRN of S1111111?",
            "context": "It's 2023-11-13T10:15:00+00:00 now, and the answer should be rounded down to an integer.",
            "eval_MRN": "S1111111",
        }
    ]
    (bench.path / "mine.json").write_text(json.dumps(tasks))
    result = bench.runpytest_subprocess(
        "--model=reference", "--ehr-scale=small", "--results-dir=results", "--tasks=mine.json"
    )
    result.assert_outcomes(passed=1)
    summary = summary_of(bench)
    assert summary["environment"]["seating"] == "tasks"
    assert summary["comparability"]["level"] == "none"


def test_do_nothing_baseline_is_graded_like_any_model(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess("--model=do-nothing", "--ehr-scale=small", "--results-dir=results", *SELECTION)
    summary = json.loads((bench.path / "results" / "do-nothing" / "summary.json").read_text())
    assert summary["model"] == "do-nothing" and summary["total"] == 6 and summary["completed"] == 6
    # Writing tasks (task3 records a blood pressure) need a POST, so doing nothing fails them.
    assert summary["task_breakdown"]["task3"]["correct"] == 0
    result.assert_outcomes(passed=summary["correct"], failed=6 - summary["correct"])


def test_an_external_fhir_url_is_checked_and_used(bench: pytest.Pytester) -> None:
    from medbench.ehr.cache import ensure_database
    from medbench.ehr.population import build_population
    from medbench.ehr.seating import Seating
    from medbench.fhir import FhirServer
    from medbench.tasks import load_task_set

    task_set = load_task_set("generated", population=build_population(scale="small"))
    with FhirServer(ensure_database(0, "small", Seating.from_tasks(task_set.tasks))) as server:
        result = bench.runpytest_subprocess(
            "--model=reference",
            "--ehr-scale=small",
            "--results-dir=results",
            f"--fhir-url={server.base_url}",
            *SELECTION[1:3],
        )
    result.assert_outcomes(passed=2)
    environment = summary_of(bench)["environment"]
    assert environment["kind"] == "external" and environment["fhir_url"] == server.base_url
    assert environment["fingerprint"].startswith("external:")
