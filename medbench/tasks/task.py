"""The task record shared by every task source, so nothing downstream cares where a task came from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = tuple(range(1, 11))


def canonical_sha256(obj: Any) -> str:
    """Hash of the canonical JSON form, so a re-formatted but identical file hashes the same."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Task:
    id: str
    category: int
    instruction: str
    context: str
    eval_MRN: str | None = None
    sol: list[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The upstream task-file record (keys id, instruction, context, sol, eval_MRN)."""
        record: dict[str, Any] = {"id": self.id, "instruction": self.instruction, "context": self.context}
        if self.sol is not None:
            record["sol"] = self.sol
        if self.eval_MRN is not None:
            record["eval_MRN"] = self.eval_MRN
        return record


@dataclass(frozen=True)
class TaskSet:
    """A list of tasks plus what the agent is shown with them (prompt template and function catalog)."""

    name: str
    tasks: tuple[Task, ...]
    prompt_template: str
    functions: list[dict[str, Any]] = field(hash=False)
    flavour: str = "generated"
    benchmark: str = "v1"
    """"v1" (MedAgentBench) or "v2" (MedAgentBench v2: its tool protocol, graders and EHR)."""

    @property
    def sha256(self) -> str:
        return canonical_sha256([t.to_json() for t in self.tasks])

    def by_id(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


@dataclass(frozen=True)
class Presentation:
    """What the agent is shown alongside a task: prompt template, function catalog and their flavour."""

    prompt_template: str
    functions: list[dict[str, Any]] = field(hash=False)
    flavour: str = "generated"
