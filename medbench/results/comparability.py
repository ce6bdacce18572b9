"""What a run's score can be compared with, said in summary.json (`comparability`).

A score is only comparable with published MedAgentBench numbers when the tasks, the protocol,
the graders and the data graders read are the official ones. The task set and the environment
(server kind and seating) decide which of three cases a run is in; the wording here is what
README.md explains under "What is comparable".
"""

from __future__ import annotations

from typing import Any

SITUATIONS_NOTE = (
    "Every task's grading situation equals the official server's (same branch, same decisive values); "
    "the rest of each chart is synthetic, so bundle sizes and contents, context use and distractors differ. "
    "Fully comparable scores need the official MedAgentBench Docker server (--fhir-url)."
)


A2A_NOTE = (
    "An agent under test over A2A brings its own loop and prompt: its score measures the agent, "
    "never a model, and is not comparable with published MedAgentBench model scores."
)
V2_NOTE = (
    "MedAgentBench v2 through its own tool protocol (11 tools, Chat Completions, 8 steps, creates executed). "
    "Upstream ran the Responses API with gpt-4.1 and ended a run at the first tool error; this harness answers "
    "tool errors to the model (as upstream's chat runner does). On the embedded EHR the official tasks are seated "
    "in the branch third-party labels give for the official image (silent_labels.jsonl), with synthetic charts: "
    "comparable in what each task requires, not in chart contents; published v2 numbers came from the HAPI image. "
    "See docs/v2.md."
)


def comparability(
    task_set_name: str | None,
    environment: dict[str, Any],
    v2_modes: dict[str, Any] | None = None,
    protocol: str | None = None,
) -> dict[str, str]:
    """`level` (external, situations, none), a short `label` and a `note` saying why."""
    if protocol == "a2a":
        return {"level": "none", "label": "A2A agent under test", "note": A2A_NOTE}
    if v2_modes:
        return _v2_comparability(task_set_name, environment)
    if environment.get("kind") == "external":
        tasks = "official tasks" if task_set_name == "official" else f"task set {task_set_name}"
        return {
            "level": "external",
            "label": f"{tasks}, external FHIR server",
            "note": "Comparable with published scores when the tasks are the official ones and the server is "
            "the official MedAgentBench Docker image; medbench cannot check which server it was.",
        }
    seating = environment.get("seating", "none")
    if seating == "situations":
        return {
            "level": "situations",
            "label": "official tasks, real situations, synthetic charts",
            "note": SITUATIONS_NOTE,
        }
    if seating == "tasks":
        return {
            "level": "none",
            "label": "task file, synthetic situations and charts",
            "note": "The tasks' patients are seated on the synthetic EHR, in synthetic grading situations: "
            "not comparable with published scores.",
        }
    return {
        "level": "none",
        "label": "generated tasks, synthetic EHR",
        "note": "Our own task set on synthetic data, for development, CI and generalisation studies: "
        "not comparable with published scores.",
    }


def _v2_comparability(task_set_name: str | None, environment: dict[str, Any]) -> dict[str, str]:
    if environment.get("kind") == "external":
        return {
            "level": "external",
            "label": f"MedAgentBench v2 ({task_set_name}), external FHIR server",
            "note": "Comparable with published v2 scores only for the official task file on the official HAPI "
            "image (creates are really written there: reset it between runs). " + V2_NOTE,
        }
    if task_set_name == "v2":
        return {
            "level": "situations",
            "label": "MedAgentBench v2 official tasks, seated branches, synthetic charts",
            "note": V2_NOTE,
        }
    return {
        "level": "none",
        "label": "generated v2-style tasks, synthetic EHR",
        "note": "Our own v2-style task set on synthetic data: not comparable with published scores. " + V2_NOTE,
    }
