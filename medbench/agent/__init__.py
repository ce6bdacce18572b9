"""The agent loop: prompt, text protocol, FHIR gateway and statuses (see docs/DESIGN.md)."""

from medbench.agent.loop import LoopConfig, run_task
from medbench.agent.prompt import build_prompt
from medbench.agent.protocol import (
    FinishAction,
    GetAction,
    InvalidAction,
    PostAction,
    parse_action,
    strip_think,
)

__all__ = [
    "FinishAction",
    "GetAction",
    "InvalidAction",
    "LoopConfig",
    "PostAction",
    "build_prompt",
    "parse_action",
    "run_task",
    "strip_think",
]
