"""The opening user turn of a task, built exactly as the upstream harness builds it."""

from __future__ import annotations

import json

from medbench.tasks.task import Task, TaskSet


def build_prompt(task_set: TaskSet, task: Task, api_base: str) -> str:
    """Format the task set's template; `json.dumps` defaults matter, they decide the prompt's bytes.

    `api_base` is the base URL the model sees, with its trailing slash (upstream passes it so).
    """
    return task_set.prompt_template.format(
        api_base=api_base,
        functions=json.dumps(task_set.functions),
        context=task.context,
        question=task.instruction,
    )
