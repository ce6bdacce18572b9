"""Task files in the upstream format (a JSON list of task records): validated reading and writing.

Every task source ends up here, so a malformed file fails in one place with an error that
names the task and the key to fix, instead of surfacing later as a grader exception.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from medbench.tasks.generated import generated_presentation
from medbench.tasks.task import CATEGORIES, Presentation, Task, TaskSet

TASK_ID = re.compile(r"^task(\d+)_(\d+)$")
REQUIRED_TEXT_KEYS = ("instruction", "context")


class TaskFileError(ValueError):
    """A task file that does not follow the upstream format; the message names task and key."""


def category_of(task_id: str) -> int:
    """Category from the id (`task5_12` -> 5), the only place upstream records it."""
    match = TASK_ID.match(task_id)
    if match is None:
        raise TaskFileError(f"task id {task_id!r}: expected the form task<category>_<number>, e.g. task5_12")
    category = int(match.group(1))
    if category not in CATEGORIES:
        raise TaskFileError(
            f"task {task_id!r} key 'id': unknown category {category} (known: {CATEGORIES[0]}..{CATEGORIES[-1]})"
        )
    return category


def _task_from_record(record: Any, position: int, source: str) -> Task:
    if not isinstance(record, dict):
        raise TaskFileError(f"{source}: entry {position} is a {type(record).__name__}, expected a JSON object")
    task_id = record.get("id")
    if not isinstance(task_id, str):
        raise TaskFileError(f"{source}: entry {position} key 'id': missing or not a string")
    try:
        category = category_of(task_id)
    except TaskFileError as error:
        raise TaskFileError(f"{source}: {error}") from None
    for key in REQUIRED_TEXT_KEYS:
        if not isinstance(record.get(key), str):
            raise TaskFileError(f"{source}: task {task_id!r} key {key!r}: missing or not a string")
    eval_mrn = record.get("eval_MRN")
    if eval_mrn is not None and not isinstance(eval_mrn, str):
        raise TaskFileError(f"{source}: task {task_id!r} key 'eval_MRN': expected a string")
    sol = record.get("sol")
    if sol is not None and not isinstance(sol, list):
        raise TaskFileError(f"{source}: task {task_id!r} key 'sol': expected a list")
    if category == 1 and sol is None:
        raise TaskFileError(f"{source}: task {task_id!r} key 'sol': category 1 needs the expected answer")
    if category != 1 and eval_mrn is None:
        raise TaskFileError(f"{source}: task {task_id!r} key 'eval_MRN': category {category} needs the patient MRN")
    return Task(
        id=task_id,
        category=category,
        instruction=record["instruction"],
        context=record["context"],
        eval_MRN=eval_mrn,
        sol=sol,
    )


def tasks_from_records(records: Any, source: str) -> tuple[Task, ...]:
    """Validate upstream records (required keys, unique ids, known categories), keeping file order."""
    if not isinstance(records, list):
        raise TaskFileError(f"{source}: expected a JSON list of task records, found {type(records).__name__}")
    tasks = tuple(_task_from_record(record, position, source) for position, record in enumerate(records))
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise TaskFileError(f"{source}: task {task.id!r} key 'id': duplicate id")
        seen.add(task.id)
    if not tasks:
        raise TaskFileError(f"{source}: the task file holds no tasks")
    return tasks


def read_task_records(path: Path) -> Any:
    """Parse a task file, turning a missing or truncated file into a TaskFileError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TaskFileError(f"cannot read task file {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TaskFileError(f"task file {path} is not valid JSON ({error}); is it truncated?") from None


def load_task_file(path: str | Path, presentation: Presentation | None = None) -> TaskSet:
    """Load any task file in the upstream format.

    `presentation` is what the agent is shown with the tasks; by default our own prompt and
    function catalog (works offline). Pass `official_presentation()` for a third-party task set
    written against the official prompt.
    """
    path = Path(path)
    tasks = tasks_from_records(read_task_records(path), str(path))
    shown = presentation or generated_presentation()
    return TaskSet(
        name=f"file:{path.name}",
        tasks=tasks,
        prompt_template=shown.prompt_template,
        functions=shown.functions,
        flavour=shown.flavour,
    )


def write_task_file(task_set: TaskSet, path: str | Path) -> Path:
    """Write a task set in the upstream format (`--write-tasks`), readable by load_task_file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [task.to_json() for task in task_set.tasks]
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
