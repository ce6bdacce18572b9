"""The settings a benchmark session runs with: plain data, no pytest, shared by the runner and the plugin.

`medbench.plugin.options` reads them from the command line, environment and ini; a script
or another harness can build `Settings` directly (see `medbench.runner`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from medbench.models.builtin.server import BUILTIN_MODELS
from medbench.models.replicas import replica_label
from medbench.results.gates import Gate
from medbench.sharding import Shard

DEFAULT_DISPLAY_URL = "http://localhost:8080/fhir/"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# `full` is the realistic EHR (500 patients, ~700k resources, response sizes like the official
# server), so the default run measures what users quote; `small` is for fast unit tests.
DEFAULT_EHR_SCALE = "full"
EHR_SCALES = ("small", "medium", "full")
PROTOCOLS = ("text", "tools", "a2a")  # a2a: set by --agent-url (an agent under test, docs/agents.md)
# MedAgentBench v2's task sets run v2's tool protocol (medbench.agent.v2_loop), never --protocol's choices.
V2_TASK_SETS = ("v2", "generated-v2")
V2_PROTOCOL = "v2-tools"
GRADERS = ("official", "corrected", "state")
POST_MODES = ("official", "execute")


class SetupError(Exception):
    """The benchmark cannot start (task set, environment, model endpoint); the message says what to fix."""


@dataclass(frozen=True)
class CallLimits:
    """How long the harness waits for the model endpoint, and how long it keeps retrying (the defaults
    are `OpenAIChatModel`'s)."""

    timeout: float = 120.0
    retry_budget: float = 300.0
    timeout_retries: int = 1

    def client_kwargs(self) -> dict[str, Any]:
        """The matching `OpenAIChatModel` constructor arguments."""
        return {"timeout": self.timeout, "retry_budget_s": self.retry_budget, "timeout_retries": self.timeout_retries}

    def recorded(self) -> dict[str, Any]:
        """What run.json and summary.json record under `endpoint`."""
        return {"timeout_s": self.timeout, "retry_budget_s": self.retry_budget, "timeout_retries": self.timeout_retries}


@dataclass(frozen=True)
class Settings:
    """Everything a benchmark session needs to know, validated."""

    model: str = "reference"
    base_url: str = OPENAI_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    tasks: str = "generated"
    task_seed: int = 0
    write_tasks: Path | None = None
    official_dir: Path | None = None
    fhir_url: str | None = None
    fhir_display_url: str = DEFAULT_DISPLAY_URL
    ehr_seed: int = 0
    ehr_scale: str = DEFAULT_EHR_SCALE
    max_rounds: int = 8
    # MedAgentBench v2: what task1's official grader measures from (None: the session's start).
    v2_task1_anchor: str | None = None
    protocol: str = "text"
    grader: str = "official"
    post_mode: str = "official"
    strip_think: bool = False
    results_dir: Path = Path("results")
    run_name: str | None = None
    resume: bool = False
    repeats: int = 1
    gates: tuple[Gate, ...] = ()
    report: Path | None = None
    concurrency: int = 1
    task_ids: tuple[str, ...] = ()  # --task-id: run exactly these tasks
    call_limits: CallLimits = field(default_factory=CallLimits)
    shard: Shard | None = None  # --shard I/N: run only the I-th of N slices of the selected attempts
    base_urls: tuple[str, ...] = ()  # --base-url repeated: replicas of one model (base_url is the first)
    agent_url: str | None = None  # --agent-url: benchmark the A2A agent there (protocol a2a) instead of a model
    max_tool_calls: int | None = None  # a2a: tool calls per attempt (None: one per round of max_rounds)

    @property
    def is_builtin(self) -> bool:
        """`reference`, `do-nothing` or `give-up`: served by the local built-in endpoint, no key, no network."""
        return self.agent_url is None and self.model in BUILTIN_MODELS

    @property
    def tool_call_cap(self) -> int:
        """An agent's tool calls per attempt: --max-tool-calls, else the official rounds' worth (one per round)."""
        return self.max_tool_calls if self.max_tool_calls is not None else self.max_rounds

    def mode_problem(self) -> str | None:
        """Why these modes cannot run together, or None. The state grader reads what the attempt
        created on the server, so it needs POSTs that are sent (and kept per attempt)."""
        if self.grader == "state" and self.post_mode != "execute":
            return (
                "--grader=state decides from the resources each attempt created on the FHIR server; "
                "it needs --post-mode=execute (POSTs sent to the embedded server), "
                f"not --post-mode={self.post_mode}"
            )
        return None

    @property
    def run_folder(self) -> Path:
        """`<results-dir>/<model-slug>[/<run-name>]`."""
        folder = self.results_dir / slug(self.model)
        return folder / slug(self.run_name) if self.run_name else folder

    def identity(self, task_set_name: str, task_set_sha256: str) -> dict[str, Any]:
        """What makes two sessions one run: resuming with any of these changed is refused."""
        if self.fhir_url:
            environment: dict[str, Any] = {"kind": "external", "fhir_url": self.fhir_url}
        else:
            environment = {"kind": "embedded", "ehr_seed": self.ehr_seed, "ehr_scale": self.ehr_scale}
        identity = {
            "model": self.model,
            "run_name": self.run_name,
            "task_set": task_set_name,
            "task_set_sha256": task_set_sha256,
            "environment": environment,
            "fhir_display_url": self.fhir_display_url,
            "protocol": self.protocol,
            "grader": self.grader,
            "post_mode": self.post_mode,
            "max_rounds": self.max_rounds,
            "strip_think": self.strip_think,
            "repeats": self.repeats,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.agent_url is not None:  # agent runs only: model runs keep the identity they always had
            identity["max_tool_calls"] = self.tool_call_cap
        return identity

    @property
    def replica_urls(self) -> tuple[str, ...]:
        """Every base URL calls may go to: the replicas, or the one base URL."""
        return self.base_urls if len(self.base_urls) > 1 else (self.base_url,)

    def endpoint(self) -> dict[str, Any]:
        """Where the model was reached, without secrets (header names only, no query string)."""
        if self.agent_url is not None:
            return {
                "agent_url": _without_query(self.agent_url),
                "max_tool_calls": self.tool_call_cap,
                "attempt_timeout_s": self.call_limits.timeout,
            }
        base = "built-in local endpoint" if self.is_builtin else _without_query(self.base_url)
        endpoint = {"base_url": base, "extra_header_names": sorted(self.extra_headers), **self.call_limits.recorded()}
        if not self.is_builtin and len(self.replica_urls) > 1:
            endpoint["replicas"] = [replica_label(url) for url in self.replica_urls]
        return endpoint


def builtin_model_hint(model: str) -> str | None:
    """For a name one typo away from a built-in model (`referense`): say so, and name them all.

    Any other name is sent to the OpenAI-compatible endpoint, so a misspelt built-in name would
    otherwise surface as "endpoint not reachable" (or an API bill), far from its cause."""
    if model in BUILTIN_MODELS:
        return None
    close = difflib.get_close_matches(model, list(BUILTIN_MODELS), n=1, cutoff=0.75)
    if not close:
        return None
    return (
        f"--model={model} is not a built-in model but close to --model={close[0]}; "
        f"the built-in models are {', '.join(BUILTIN_MODELS)} (any other name is sent to the --base-url endpoint)"
    )


def slug_is_safe(name: str) -> bool:
    """A model name whose folder cannot be confused with another's by the slug alone (`..`, `.`, `///`)."""
    return bool(re.sub(r"[^A-Za-z0-9]+", "", name))


def slug(name: str) -> str:
    """A filesystem-safe folder name: `anthropic/claude-x` -> `anthropic_claude-x`."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "model"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
