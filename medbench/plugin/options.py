"""The `medbench` pytest option group, read into `medbench.settings.Settings`.

Every option reads, in order: the command line, an environment variable, a pytest.ini key,
the default (the help text names all four). Settings are validated once here so that a bad
value is a usage error naming the option, before any server starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from medbench.models.builtin.server import BUILTIN_MODELS
from medbench.results.gates import Gate, GateSpecError, parse_task_gate, parse_threshold
from medbench.settings import (
    DEFAULT_DISPLAY_URL,
    DEFAULT_EHR_SCALE,
    EHR_SCALES,
    GRADERS,
    OPENAI_BASE_URL,
    POST_MODES,
    PROTOCOLS,
    V2_PROTOCOL,
    V2_TASK_SETS,
    CallLimits,
    Settings,
    builtin_model_hint,
    slug_is_safe,
)
from medbench.sharding import ShardSpecError, parse_shard


@dataclass(frozen=True)
class _Option:
    flag: str
    help: str
    default: Any = None
    env: str | None = None
    kind: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    in_ini: bool = True
    aliases: tuple[str, ...] = ()
    repeatable: bool = False  # given several times (comma-separated in the environment variable or ini)
    shown_default: str | None = None  # what the help says the default is, where `default` (None) would mislead

    @property
    def default_text(self) -> str:
        """The default as `--help` and the option reference state it."""
        if self.shown_default is not None:
            return self.shown_default
        return str(self.default) if self.default is not None else "none"

    @property
    def dest(self) -> str:
        return "medbench_" + self.flag.lstrip("-").replace("-", "_")

    @property
    def ini(self) -> str:
        return self.dest


OPTIONS: tuple[_Option, ...] = (
    _Option(
        "--model",
        "model name sent to the endpoint; `reference` (rule-based), `do-nothing` and `give-up` (baselines) start a built-in local endpoint",
        "reference",
        "MEDBENCH_MODEL",
        metavar="NAME",
    ),
    _Option(
        "--base-url",
        "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (ignored, with a warning, for the built-in models); "
        "repeat it for replicas of one model: each call goes to the least busy one, a failing one is left out for a "
        "while (env: comma-separated; docs/sharding.md)",
        None,
        "MEDBENCH_BASE_URL",
        metavar="URL",
        shown_default=f"$OPENAI_BASE_URL, else {OPENAI_BASE_URL}",
        repeatable=True,
    ),
    _Option("--api-key", "API key (prefer --api-key-env; never written to results)", None, metavar="KEY", in_ini=False),
    _Option(
        "--api-key-env",
        "environment variable holding the API key",
        "OPENAI_API_KEY",
        "MEDBENCH_API_KEY_ENV",
        metavar="VAR",
    ),
    _Option(
        "--temperature",
        "sampling temperature sent to the model (default: endpoint default, as upstream)",
        None,
        "MEDBENCH_TEMPERATURE",
        float,
        metavar="T",
    ),
    _Option(
        "--max-tokens",
        "max completion tokens per model call (default: endpoint default)",
        None,
        "MEDBENCH_MAX_TOKENS",
        int,
        metavar="N",
    ),
    _Option(
        "--tasks",
        "task set: `generated`, `official`, `v2` (MedAgentBench v2), `generated-v2`, or a path to a task JSON file in the upstream format",
        "generated",
        "MEDBENCH_TASKS",
        metavar="SPEC",
    ),
    _Option("--task-seed", "seed of the generated task set", 0, "MEDBENCH_TASK_SEED", int, metavar="N"),
    _Option(
        "--write-tasks",
        "also write the selected task set to this path (upstream task-file format)",
        None,
        metavar="PATH",
    ),
    _Option(
        "--official-dir",
        "folder holding the official assets (else $MEDBENCH_OFFICIAL_DIR, the cache, or a download)",
        None,
        metavar="DIR",
    ),
    _Option(
        "--fhir-url",
        "external FHIR R4 base URL (default: the embedded server with the synthetic EHR)",
        None,
        "MEDBENCH_FHIR_URL",
        metavar="URL",
    ),
    _Option(
        "--fhir-display-url",
        f"FHIR base URL the model sees (default {DEFAULT_DISPLAY_URL} embedded, --fhir-url external)",
        None,
        "MEDBENCH_FHIR_DISPLAY_URL",
        metavar="URL",
    ),
    _Option("--ehr-seed", "seed of the synthetic EHR (embedded server)", 0, "MEDBENCH_EHR_SEED", int, metavar="N"),
    _Option(
        "--ehr-scale",
        "synthetic EHR size: small (fast tests), medium, full (realistic)",
        DEFAULT_EHR_SCALE,
        "MEDBENCH_EHR_SCALE",
        str,
        EHR_SCALES,
    ),
    _Option(
        "--v2-task1-anchor",
        "MedAgentBench v2 official grader: the time task1's 12 months are measured from (ISO 8601 with offset; "
        "default: the session's start). Give a recorded run's modes.v2_task1_anchor to replay its verdicts",
        None,
        "MEDBENCH_V2_TASK1_ANCHOR",
        metavar="TIME",
    ),
    _Option("--max-rounds", "model turns per task before limit_reached", 8, "MEDBENCH_MAX_ROUNDS", int, metavar="N"),
    _Option(
        "--protocol",
        "agent protocol: text (official GET/POST/FINISH) or tools (native function calling, see README)",
        "text",
        "MEDBENCH_PROTOCOL",
        str,
        PROTOCOLS,
    ),
    _Option(
        "--grader",
        "grader mode: official (upstream decisions, quirks included), corrected, or state (writes judged by what the EHR holds; needs --post-mode=execute)",
        "official",
        "MEDBENCH_GRADER",
        str,
        GRADERS,
    ),
    _Option(
        "--post-mode",
        "POST handling: official (acknowledged, not sent) or execute (sent, isolated per task)",
        "official",
        "MEDBENCH_POST_MODE",
        str,
        POST_MODES,
    ),
    _Option(
        "--results-dir",
        "folder for <model-slug>/runs.jsonl, transcripts.jsonl, summary.json",
        "results",
        "MEDBENCH_RESULTS_DIR",
        metavar="DIR",
    ),
    _Option(
        "--run-name",
        "extra folder level under the model slug, to keep several runs of one model",
        None,
        "MEDBENCH_RUN_NAME",
        metavar="NAME",
    ),
    _Option(
        "--repeats",
        "attempts per task (adds pass@k and pass^k to the summary)",
        1,
        "MEDBENCH_REPEATS",
        int,
        metavar="K",
    ),
    _Option(
        "--min-accuracy",
        "gate: exit 0 only if overall accuracy >= this (0.9 or 90%%)",
        None,
        "MEDBENCH_MIN_ACCURACY",
        metavar="X",
    ),
    _Option(
        "--concurrency",
        "task attempts kept in flight by each pytest process (xdist worker or plain run); 1 runs them one at a time",
        1,
        "MEDBENCH_CONCURRENCY",
        int,
        metavar="N",
    ),
    _Option(
        "--report", "after the session, write the reports of the results folder into this folder", None, metavar="DIR"
    ),
    _Option(
        "--shard",
        "run only the I-th of N deterministic slices of the selected attempts (1/3, 2/3, 3/3) into a run folder of "
        "its own, merged later with `python -m medbench.results merge`; `auto` reads a Slurm job array's "
        "SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT (docs/sharding.md)",
        None,
        "MEDBENCH_SHARD",
        metavar="I/N|auto",
    ),
)


_OPTION = {option.flag: option for option in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    """Register the `medbench` group and its ini keys."""
    group = parser.getgroup("medbench", "medbench benchmark (MedAgentBench agent runs)")
    taken = _flags_taken(parser)
    for option in OPTIONS + CALL_LIMIT_OPTIONS + AGENT_OPTIONS:
        fallbacks = [f"env {option.env}"] if option.env else []
        if option.in_ini:
            fallbacks.append(f"ini {option.ini}")
        default = f"default: {option.default_text}"
        flags = [flag for flag in (option.flag, *option.aliases) if flag not in taken]
        group.addoption(
            *flags,
            dest=option.dest,
            default=None,
            choices=option.choices,
            metavar=option.metavar,
            help=f"{option.help} ({'; '.join(fallbacks + [default])})",
            **({"action": "append"} if option.repeatable else {}),
        )
        if option.in_ini:
            parser.addini(option.ini, f"medbench {option.flag}", default=None)
    group.addoption(
        "--extra-header",
        dest="medbench_extra_header",
        action="append",
        default=[],
        metavar="K=V",
        help="extra HTTP header for the model endpoint, repeatable (values never written to results)",
    )
    group.addoption(
        "--strip-think",
        dest="medbench_strip_think",
        action="store_true",
        default=False,
        help="remove <think>...</think> from model answers before parsing (not in official mode)",
    )
    group.addoption(
        "--resume",
        dest="medbench_resume",
        action="store_true",
        default=False,
        help="continue the run in the results folder: skip recorded task attempts (same modes and task set only)",
    )
    group.addoption(
        "--task-id",
        dest="medbench_task_id",
        action="append",
        default=[],
        metavar="ID[,ID...]",
        help="run exactly these tasks, repeatable or comma-separated (task1_1,task2_3); "
        "-k matches substrings, so -k task1_1 also runs task1_10..task1_19",
    )
    group.addoption(
        "--min-task-accuracy",
        dest="medbench_min_task_accuracy",
        action="append",
        default=[],
        metavar="taskN=X",
        help="gate per category, repeatable, e.g. task5=0.8",
    )


def option_notes(config: pytest.Config) -> list[str]:
    """Options that are accepted but do not do what the user may think: said once, at the start.

    `--base-url` (or $MEDBENCH_BASE_URL, ini) beside a built-in model is ignored: the built-in
    models are served locally. A model name one typo away from a built-in name is sent to an
    endpoint, which is rarely what was meant."""
    model = _resolve(config, _OPTION["--model"])
    notes = []
    base_urls = _resolve(config, _OPTION["--base-url"]) or []  # repeatable: a list
    if base_urls and model in BUILTIN_MODELS:
        notes.append(
            f"--base-url={', '.join(base_urls)} is ignored: --model={model} is a built-in model, served by a local endpoint"
        )
    hint = builtin_model_hint(model or "")
    if hint:
        notes.append(hint)
    return notes


def settings_from_config(config: pytest.Config) -> Settings:
    """Read and validate the options; a bad value raises pytest.UsageError naming the option."""
    values = {option.flag: _resolve(config, option) for option in OPTIONS}
    if not (values["--model"] or "").strip():
        raise pytest.UsageError(
            "--model must name a model (e.g. --model=gpt-4o, or --model=reference for the built-in one)"
        )
    if not slug_is_safe(values["--model"]):
        raise pytest.UsageError(
            f"--model={values['--model']!r} does not make a results folder name; "
            "use letters, digits, '/', '_', '-' or '.'"
        )
    if values["--official-dir"] and values["--tasks"] not in ("official", "v2"):
        raise pytest.UsageError(
            "--official-dir is only read with --tasks=official or --tasks=v2 "
            f"(this session uses --tasks={values['--tasks']}); drop it or add --tasks=official"
        )
    if values["--tasks"] in V2_TASK_SETS:
        _v2_modes(config, values)
    for flag in ("--max-rounds", "--repeats", "--concurrency"):
        if values[flag] < 1:
            raise pytest.UsageError(f"{flag} must be at least 1, got {values[flag]}")
    try:
        gates = [Gate(None, parse_threshold(values["--min-accuracy"]))] if values["--min-accuracy"] else []
        gates += [parse_task_gate(text) for text in config.getoption("medbench_min_task_accuracy")]
    except GateSpecError as error:
        raise pytest.UsageError(str(error)) from None
    fhir_url = _with_slash(values["--fhir-url"])
    if values["--grader"] == "state" and values["--post-mode"] != "execute":
        raise pytest.UsageError(Settings(grader="state", post_mode=values["--post-mode"]).mode_problem() or "")
    api_key = values["--api-key"] or os.environ.get(values["--api-key-env"]) or None
    base_urls = replica_urls(values["--base-url"] or [], values["--model"])
    try:
        shard = parse_shard(values["--shard"], os.environ)
    except ShardSpecError as error:
        raise pytest.UsageError(str(error)) from None
    settings = Settings(
        model=values["--model"],
        base_url=(base_urls or [os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL])[0],
        base_urls=tuple(base_urls) if len(base_urls) > 1 else (),
        shard=shard,
        api_key=api_key,
        extra_headers=parse_headers(config.getoption("medbench_extra_header")),
        temperature=values["--temperature"],
        max_tokens=values["--max-tokens"],
        tasks=values["--tasks"],
        task_seed=values["--task-seed"],
        write_tasks=_path(values["--write-tasks"]),
        official_dir=_path(values["--official-dir"]),
        fhir_url=fhir_url,
        fhir_display_url=_with_slash(values["--fhir-display-url"]) or fhir_url or DEFAULT_DISPLAY_URL,
        ehr_seed=values["--ehr-seed"],
        ehr_scale=values["--ehr-scale"],
        max_rounds=values["--max-rounds"],
        v2_task1_anchor=_anchor(values["--v2-task1-anchor"]),
        protocol=values["--protocol"],
        grader=values["--grader"],
        post_mode=values["--post-mode"],
        strip_think=bool(config.getoption("medbench_strip_think")),
        results_dir=Path(values["--results-dir"]),
        run_name=values["--run-name"],
        resume=bool(config.getoption("medbench_resume")),
        repeats=values["--repeats"],
        gates=tuple(gates),
        report=_path(values["--report"]),
        concurrency=values["--concurrency"],
        call_limits=call_limits_from_config(config),
        task_ids=tuple(
            dict.fromkeys(
                part.strip()
                for item in config.getoption("medbench_task_id")
                for part in item.split(",")
                if part.strip()
            )
        ),
    )
    return with_agent_options(config, settings)


def replica_urls(urls: list[str], model: str) -> list[str]:
    """The --base-url values (several: replicas of one model), checked: each named once, not for a built-in model."""
    repeated = sorted({url for url in urls if urls.count(url) > 1})
    if repeated:
        raise pytest.UsageError(f"--base-url {repeated[0]} is given twice; name each replica of the model once")
    if len(urls) > 1 and model in BUILTIN_MODELS:
        raise pytest.UsageError(
            f"--model={model} is served by the built-in local endpoint, so --base-url is ignored; to spread calls "
            "over several built-in model servers, start them with `python -m medbench.models serve --port P` "
            "and name the model otherwise (e.g. --model=reference-served)"
        )
    return urls


# --- model-call limits: per-attempt timeout, retry budget, timeout retries (issue 11) ----------------
CALL_LIMIT_OPTIONS: tuple[_Option, ...] = (
    # --model-timeout stays usable where pytest-timeout already owns --timeout (see _flags_taken).
    _Option(
        "--timeout",
        "seconds a model call attempt may wait for the endpoint to connect or send its next bytes",
        CallLimits.timeout,
        "MEDBENCH_TIMEOUT",
        float,
        metavar="S",
        aliases=("--model-timeout",),
    ),
    _Option(
        "--retry-budget",
        "seconds one model call may spend retrying after its first attempt failed (waits and retried attempts)",
        CallLimits.retry_budget,
        "MEDBENCH_RETRY_BUDGET",
        float,
        metavar="S",
    ),
    _Option(
        "--timeout-retries",
        "how many times one model call is retried after timing out",
        CallLimits.timeout_retries,
        "MEDBENCH_TIMEOUT_RETRIES",
        int,
        metavar="N",
    ),
)


def _flags_taken(parser: pytest.Parser) -> set[str]:
    """Flags other plugins registered before us (pytest-timeout's --timeout): registering one twice
    would crash pytest at start-up, so such a flag is left to its owner and only the alias remains."""
    groups = [*getattr(parser, "_groups", []), getattr(parser, "_anonymous", None)]
    return {name for group in groups if group is not None for opt in group.options for name in opt.names()}


def call_limits_from_config(config: pytest.Config) -> CallLimits:
    """--timeout, --retry-budget, --timeout-retries (command line, env, ini, default), validated."""
    timeout, budget, timeout_retries = (_resolve(config, option) for option in CALL_LIMIT_OPTIONS)
    if timeout <= 0:
        raise pytest.UsageError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    if budget < 0:
        raise pytest.UsageError(f"--retry-budget must not be negative, got {budget:g}")
    if timeout_retries < 0:
        raise pytest.UsageError(f"--timeout-retries must not be negative, got {timeout_retries}")
    return CallLimits(float(timeout), float(budget), int(timeout_retries))


def parse_headers(items: list[str]) -> dict[str, str]:
    """`["X-Team=a", "X-Trace=b"]` -> dict; the value may itself contain `=`."""
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"--extra-header expects NAME=VALUE, got {name.strip() or item!r}")
        headers[name.strip()] = value
    return headers


def _resolve(config: pytest.Config, option: _Option) -> Any:
    raw: Any = config.getoption(option.dest)
    source = option.flag
    if raw is None and option.env and os.environ.get(option.env):
        raw, source = os.environ[option.env], f"${option.env}"
    if raw is None and option.in_ini and config.getini(option.ini):
        raw, source = config.getini(option.ini), f"ini {option.ini}"
    if raw is None:
        return option.default
    if option.repeatable:
        items = raw if isinstance(raw, list) else str(raw).replace(",", " ").split()
        return [item.strip() for item in items if item.strip()]
    try:
        value = option.kind(raw)
    except ValueError:
        raise pytest.UsageError(f"{source}: {raw!r} is not a valid {option.kind.__name__} for {option.flag}") from None
    if option.choices and value not in option.choices:
        raise pytest.UsageError(f"{source}: {raw!r} is not one of {', '.join(option.choices)} for {option.flag}")
    return value


def _anchor(text: str | None) -> str | None:
    """A --v2-task1-anchor value, checked: an ISO 8601 time with its UTC offset."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise pytest.UsageError(
            f"--v2-task1-anchor={text!r}: expected an ISO 8601 time with an offset, e.g. 2026-12-05T02:24:53+00:00"
        )
    return parsed.isoformat()


def _v2_modes(config: pytest.Config, values: dict[str, Any]) -> None:
    """A v2 task set speaks v2's own tool protocol and really sends its creates (as upstream's v2
    harness does): `--protocol` and `--post-mode` are fixed, and asking for others is a usage error."""
    for flag, wanted in (("--protocol", V2_PROTOCOL), ("--post-mode", "execute")):
        given = next(option for option in OPTIONS if option.flag == flag)
        if config.getoption(given.dest) is not None and values[flag] != wanted:
            raise pytest.UsageError(
                f"{flag}={values[flag]} does not apply to --tasks={values['--tasks']}: MedAgentBench v2 runs "
                "its own tool protocol and executes its creates in each attempt's namespace; drop the option"
            )
        values[flag] = wanted


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _with_slash(url: str | None) -> str | None:
    if not url:
        return None
    return url if url.endswith("/") else url + "/"


# --- agents under test over A2A (issue 19, docs/agents.md) ---------------------------------------------
AGENT_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "--agent-url",
        "benchmark the A2A agent at this URL instead of a model (protocol a2a: the agent gets each task over A2A "
        "and its tools over MCP; see docs/agents.md)",
        None,
        "MEDBENCH_AGENT_URL",
        metavar="URL",
    ),
    _Option(
        "--max-tool-calls",
        "with --agent-url: tool calls per attempt before limit_reached (default: --max-rounds, the official rounds' worth)",
        None,
        "MEDBENCH_MAX_TOOL_CALLS",
        int,
        metavar="N",
    ),
)
AGENT_RUN_MODEL = "a2a-agent"


def with_agent_options(config: pytest.Config, settings: Settings) -> Settings:
    """--agent-url turns the session into an agent run: protocol a2a, and (unless --model names it) the
    results folder `a2a-agent`. --timeout then bounds each whole attempt."""
    agent_url, max_tool_calls = (_resolve(config, option) for option in AGENT_OPTIONS)
    if max_tool_calls is not None and max_tool_calls < 1:
        raise pytest.UsageError(f"--max-tool-calls must be at least 1, got {max_tool_calls}")
    if agent_url is None:
        if settings.protocol == "a2a":
            raise pytest.UsageError("--protocol=a2a needs --agent-url=URL (the A2A agent to benchmark)")
        return settings
    if not agent_url.startswith(("http://", "https://")):
        raise pytest.UsageError(f"--agent-url={agent_url!r}: expected an http(s) URL such as http://127.0.0.1:9019")
    if settings.protocol == "tools":
        raise pytest.UsageError("--agent-url runs the agent over A2A with MCP tools; drop --protocol=tools")
    if settings.tasks in V2_TASK_SETS:
        raise pytest.UsageError(
            f"--agent-url runs the MedAgentBench v1 task sets; --tasks={settings.tasks} is not supported yet"
        )
    model_given = config.getoption("medbench_model") is not None or bool(os.environ.get("MEDBENCH_MODEL"))
    return dataclasses.replace(
        settings,
        agent_url=agent_url,
        protocol="a2a",
        max_tool_calls=max_tool_calls,
        model=settings.model if model_given else AGENT_RUN_MODEL,
    )
