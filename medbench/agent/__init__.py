"""The agent loop: prompt, text protocol, FHIR gateway and statuses (see docs/DESIGN.md)."""

from medbench.agent.gateway import DEFAULT_DISPLAY_BASE, FhirGateway, GatewayResponse
from medbench.agent.loop import LoopConfig, TaskOutcome, run_task
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
    "DEFAULT_DISPLAY_BASE",
    "FhirGateway",
    "FinishAction",
    "GatewayResponse",
    "GetAction",
    "InvalidAction",
    "LoopConfig",
    "PostAction",
    "TaskOutcome",
    "build_prompt",
    "parse_action",
    "run_task",
    "strip_think",
]
