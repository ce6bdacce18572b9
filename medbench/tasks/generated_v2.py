"""Our own MedAgentBench v2-style task set: 10 categories x 30 tasks drawn from the v2 cohort.

The wording is ours (medbench/data/v2_task_templates.json, system prompt v2_system_prompt.txt);
the facts behind each task are the cohort's charts. For every category the patients are taken in
turn from each of its branches (medbench/ehr/v2/branches.py), so every branch is exercised;
`task_seed` redraws which patients and phrasings are used, to test memorisation of the public set.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from medbench.package_data import read_json, read_text
from medbench.tasks.task import Task, TaskSet

if TYPE_CHECKING:
    from medbench.ehr.v2.cohort import V2Cohort, V2Patient

GENERATOR_V2_VERSION = "1"
TASKS_PER_CATEGORY = 30
TEMPLATES_FILE = "v2_task_templates.json"
PROMPT_FILE = "v2_system_prompt.txt"
TIMED_CATEGORIES = (1, 3, 4, 5, 9, 10)
"""Categories whose context states the task's now."""


def _rng(task_seed: int, stream: str) -> random.Random:
    digest = hashlib.sha256(f"medbench-tasks-v2|{task_seed}|{stream}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def generated_v2_prompt() -> str:
    """Our system prompt for generated v2 tasks (byte for byte as shipped)."""
    return read_text(PROMPT_FILE)


def generate_v2_task_set(task_seed: int, cohort: V2Cohort) -> TaskSet:
    """300 tasks (task1_1 .. task10_30) about patients of the unseated cohort."""
    from medbench.ehr.v2.branches import BRANCHES

    templates: dict[str, Any] = read_json(TEMPLATES_FILE)["categories"]
    tasks: list[Task] = []
    for category, branches in BRANCHES.items():
        rng = _rng(task_seed, f"category-{category}")
        pools = []
        for branch in branches:
            pool = list(cohort.in_branch(category, branch))
            rng.shuffle(pool)
            pools.append(pool)
        chosen: list[V2Patient] = []
        while len(chosen) < TASKS_PER_CATEGORY:
            for pool in pools:
                if pool and len(chosen) < TASKS_PER_CATEGORY:
                    chosen.append(pool.pop())
            if not any(pools):
                raise ValueError(
                    f"the v2 cohort has too few patients for {TASKS_PER_CATEGORY} category-{category} tasks"
                )
        rng.shuffle(chosen)
        spec = templates[str(category)]
        for number, patient in enumerate(chosen, start=1):
            now = patient.chart.now(category).isoformat()
            instruction = rng.choice(spec["instructions"]).format(mrn=patient.mrn)
            context = spec["context"].format(mrn=patient.mrn, now=now)
            tasks.append(Task(f"task{category}_{number}", category, instruction, context, patient.mrn))
    return TaskSet(
        name="generated-v2",
        tasks=tuple(tasks),
        prompt_template=generated_v2_prompt(),
        functions=[],
        flavour="generated",
        benchmark="v2",
    )


def v2_branch_counts(task_set: TaskSet, cohort: V2Cohort) -> Counter[tuple[int, str]]:
    """How many tasks of a generated v2 set meet each (category, branch), per the cohort's charts."""
    return Counter(
        (task.category, cohort.patient(task.eval_MRN or "").chart.branch(task.category)) for task in task_set.tasks
    )
