"""Run folders with real transcripts for the viewer and export tests, written by the harness's own writer.

Prompts come from the real prompt builder and the generated presentation in medbench/data/; the
user turns after each action are the agent loop's own strings (medbench.agent.protocol), so the
files look exactly as a run writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medbench.agent.prompt import build_prompt
from medbench.agent.protocol import POST_ACCEPTED, get_error_turn, get_ok_turn
from medbench.outcomes import TaskOutcome, Verdict
from medbench.results.records import run_record, transcript_record
from medbench.results.writer import RunFolder, write_json_atomic
from medbench.tasks.task import Task, TaskSet

ROOT = Path(__file__).resolve().parents[2]
API_BASE = "http://localhost:8080/fhir/"


def generated_task_set(tasks: list[Task], name: str = "generated-v1-seed5") -> TaskSet:
    """A task set shown with our generated prompt and function catalog."""
    return TaskSet(
        name=name,
        tasks=tuple(tasks),
        prompt_template=(ROOT / "medbench" / "data" / "prompt_generated.txt").read_text(encoding="utf-8"),
        functions=json.loads((ROOT / "medbench" / "data" / "functions_generated.json").read_text(encoding="utf-8")),
    )


def task(task_id: str, instruction: str, context: str = "It's 2023-11-13T10:15:00+00:00 now.") -> Task:
    return Task(
        id=task_id,
        category=int(task_id.split("_")[0].removeprefix("task")),
        instruction=instruction,
        context=context,
        eval_MRN="S1234567",
    )


def bundle(*values: float) -> str:
    """A FHIR searchset bundle as the server pretty-prints it, one Observation per value."""
    entries = [
        {"resource": {"resourceType": "Observation", "id": str(n), "valueQuantity": {"value": v, "unit": "mg/dL"}}}
        for n, v in enumerate(values)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "searchset", "total": len(values), "entry": entries}, indent=2)


def conversation(task_set: TaskSet, task: Task, exchanges: list[tuple[str, str | None]]) -> list[dict[str, str]]:
    """The history: the prompt, then each (agent answer, user turn after it; None after FINISH)."""
    history = [{"role": "user", "content": build_prompt(task_set, task, API_BASE)}]
    for answer, reply in exchanges:
        history.append({"role": "agent", "content": answer})
        if reply is not None:
            history.append({"role": "user", "content": reply})
    return history


def record_attempt(
    folder: Path,
    task_set: TaskSet,
    task: Task,
    exchanges: list[tuple[str, str | None]],
    *,
    correct: bool,
    reason: str | None = None,
    status: str = "completed",
    attempt: int = 1,
    session: str = "20260101T000000Z-abc123",
    index: int = 0,
) -> dict[str, Any]:
    """Append one attempt with RunFolder.append, as the plugin does; returns its runs.jsonl line."""
    history = conversation(task_set, task, exchanges)
    agent_turns = sum(turn["role"] == "agent" for turn in history)
    finish = next((a for a, _ in reversed(exchanges) if a.startswith("FINISH(")), None)
    calls = [
        {"ok": True, "latency_s": 0.5 + n, "prompt_tokens": 1000 * (n + 1), "completion_tokens": 20, "retries": 0}
        for n in range(agent_turns)
    ]
    outcome = TaskOutcome(
        task.id,
        status,
        finish[len("FINISH(") : -1] if finish else None,
        history,
        agent_turns,
        sum(c["prompt_tokens"] for c in calls),
        20 * agent_turns,
        sum(c["latency_s"] for c in calls),
        agent_turns,
        retries=0,
        calls=calls,
    )
    run = run_record(
        index=index,
        category=task.category,
        attempt=attempt,
        session=session,
        outcome=outcome,
        verdict=Verdict(correct, reason),
        elapsed_s=1.0,
        environment_fingerprint="embedded:test",
    )
    RunFolder(folder).append(run, transcript_record(run, outcome))
    return run


def write_summary(folder: Path, model: str, task_set: TaskSet, grader: str = "official") -> None:
    """summary.json with the fields the reports and the export read."""
    write_json_atomic(
        folder / "summary.json",
        {
            "model": model,
            "task_set": {"name": task_set.name, "sha256": task_set.sha256, "task_count": len(task_set.tasks)},
            "modes": {
                "protocol": "text",
                "grader": grader,
                "post_mode": "official",
                "max_rounds": 8,
                "strip_think": False,
            },
            "environment": {"kind": "embedded", "ehr_seed": 5, "ehr_scale": "small"},
        },
    )


GLUCOSE_GET = "GET http://localhost:8080/fhir/Observation?patient=S1234567&code=GLU&_count=5000"
GLUCOSE_URL = GLUCOSE_GET[4:] + "&_format=json"
POST_ORDER = (
    "POST http://localhost:8080/fhir/MedicationRequest\n"
    '{"resourceType": "MedicationRequest", "status": "active", "intent": "order"}'
)


def sample_results(root: Path) -> Path:
    """Two models on the same four tasks: a GET with a bundle, a failed GET, a POST, an invalid answer."""
    tasks = [
        task("task7_1", "What is the most recent glucose value of patient S1234567?"),
        task("task7_2", "Report the latest glucose of patient S7654321."),
        task("task5_1", "Check magnesium of patient S1234567 and order replacement if low."),
        task("task2_1", "How old is patient S1234567?"),
    ]
    task_set = generated_task_set(tasks)
    strong, weak = root / "strong-model", root / "weak-model"
    record_attempt(
        strong,
        task_set,
        tasks[0],
        [(GLUCOSE_GET, get_ok_turn(bundle(101, 142))), ("FINISH([142])", None)],
        correct=True,
    )
    record_attempt(
        strong,
        task_set,
        tasks[1],
        [(GLUCOSE_GET.replace("S1234567", "S7654321"), get_ok_turn(bundle(88))), ("FINISH([88])", None)],
        correct=True,
        index=1,
    )
    record_attempt(
        strong, task_set, tasks[2], [(POST_ORDER, POST_ACCEPTED), ("FINISH([])", None)], correct=True, index=2
    )
    record_attempt(strong, task_set, tasks[3], [("FINISH([60])", None)], correct=True, index=3)
    record_attempt(
        weak,
        task_set,
        tasks[0],
        [(GLUCOSE_GET, get_ok_turn(bundle(101, 142))), ("FINISH([101])", None)],
        correct=False,
        reason="task7: answer [101] != expected [142]",
    )
    record_attempt(
        weak,
        task_set,
        tasks[1],
        [
            (
                "GET http://localhost:8080/fhir/Observation?patient=S7654321&code=GLU&date=bad",
                get_error_turn(
                    "400 Client Error:  for url: http://localhost:8080/fhir/"
                    "Observation?patient=S7654321&code=GLU&date=bad&_format=json"
                ),
            ),
            ("FINISH([-1])", None),
        ],
        correct=False,
        reason="task7: answer [-1] != expected [88]",
        index=1,
    )
    record_attempt(
        weak,
        task_set,
        tasks[2],
        [("I would order magnesium now.", None)],
        correct=False,
        reason="agent_invalid_action",
        status="agent_invalid_action",
        index=2,
    )
    record_attempt(weak, task_set, tasks[3], [("FINISH([60])", None)], correct=True, index=3)
    write_summary(strong, "strong-model", task_set)
    write_summary(weak, "weak-model", task_set)
    return root
