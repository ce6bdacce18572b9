"""Task files in the upstream format: validation names the task and key, writing round-trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medbench.tasks import (
    Task,
    TaskFileError,
    TaskSet,
    load_task_file,
    load_task_set,
    write_task_file,
)
from medbench.tasks.task_file import category_of


def record(task_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": task_id, "instruction": "Q", "context": "C", "eval_MRN": "S1234567"}
    if task_id.startswith("task1_"):
        base["sol"] = ["S1234567"]
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def write(tmp_path: Path, records: Any) -> Path:
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_valid_file_keeps_file_order_and_categories(tmp_path: Path) -> None:
    path = write(tmp_path, [record("task7_2"), record("task1_1"), record("task10_30")])
    task_set = load_task_file(path)
    assert [(task.id, task.category) for task in task_set.tasks] == [("task7_2", 7), ("task1_1", 1), ("task10_30", 10)]
    assert task_set.name == "file:tasks.json"


def test_file_is_shown_with_our_prompt_by_default(tmp_path: Path) -> None:
    task_set = load_task_file(write(tmp_path, [record("task2_1")]))
    assert task_set.flavour == "generated"
    assert "{api_base}" in task_set.prompt_template and len(task_set.functions) == 9


def test_unknown_category_names_the_task_and_key(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"task 'task11_1' key 'id': unknown category 11"):
        load_task_file(write(tmp_path, [record("task2_1"), record("task11_1")]))


def test_malformed_id_is_rejected() -> None:
    with pytest.raises(TaskFileError, match="task<category>_<number>"):
        category_of("lookup_1")


def test_duplicate_id_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"task 'task3_1' key 'id': duplicate id"):
        load_task_file(write(tmp_path, [record("task3_1"), record("task3_1")]))


@pytest.mark.parametrize("key", ["instruction", "context"])
def test_missing_text_key_names_the_task_and_key(tmp_path: Path, key: str) -> None:
    bad = record("task4_9")
    del bad[key]
    with pytest.raises(TaskFileError, match=rf"task 'task4_9' key '{key}': missing"):
        load_task_file(write(tmp_path, [bad]))


def test_task1_needs_its_expected_answer(tmp_path: Path) -> None:
    bad = record("task1_3")
    del bad["sol"]
    with pytest.raises(TaskFileError, match=r"task 'task1_3' key 'sol'"):
        load_task_file(write(tmp_path, [bad]))


def test_task1_not_found_needs_no_mrn(tmp_path: Path) -> None:
    task = load_task_file(write(tmp_path, [record("task1_30", eval_MRN=None, sol=["Patient not found"])])).tasks[0]
    assert task.eval_MRN is None and task.sol == ["Patient not found"]


def test_other_categories_need_the_patient_mrn(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"task 'task9_1' key 'eval_MRN'"):
        load_task_file(write(tmp_path, [record("task9_1", eval_MRN=None)]))


def test_sol_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"task 'task3_1' key 'sol': expected a list"):
        load_task_file(write(tmp_path, [record("task3_1", sol="118/77 mmHg")]))


def test_file_must_be_a_list_of_objects(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="expected a JSON list"):
        load_task_file(write(tmp_path, {"tasks": []}))
    with pytest.raises(TaskFileError, match="entry 1 is a str"):
        load_task_file(write(tmp_path, [record("task2_1"), "task2_2"]))


def test_truncated_file_is_reported_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, [record("task2_1")])
    path.write_text(path.read_text(encoding="utf-8")[:-5], encoding="utf-8")
    with pytest.raises(TaskFileError, match="not valid JSON.*truncated"):
        load_task_file(path)


def test_written_file_reloads_to_the_same_tasks(tmp_path: Path) -> None:
    original = load_task_file(write(tmp_path, [record("task1_1"), record("task3_1", sol=["120/80 mmHg"])]))
    written = write_task_file(original, tmp_path / "out" / "copy.json")
    reloaded = load_task_file(written)
    assert reloaded.tasks == original.tasks
    assert reloaded.sha256 == original.sha256


def test_written_file_is_upstream_format(tmp_path: Path) -> None:
    task_set = TaskSet("t", (Task("task1_2", 1, "Q", "", None, ["Patient not found"]),), "P", [])
    path = write_task_file(task_set, tmp_path / "t.json")
    assert json.loads(path.read_text(encoding="utf-8")) == [
        {"id": "task1_2", "instruction": "Q", "context": "", "sol": ["Patient not found"]}
    ]


def test_load_task_set_accepts_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, [record("task6_1")])
    assert load_task_set(str(path)).tasks[0].id == "task6_1"


def test_load_task_set_rejects_an_unknown_spec() -> None:
    with pytest.raises(TaskFileError, match="'generated', 'official', 'v2', 'generated-v2' or the path"):
        load_task_set("offical")
