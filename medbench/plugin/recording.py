"""Record, replay or live: decided once per session from pytest-recording's options and the cassettes on disk.

pytest-recording owns `--record-mode` and `--disable-recording`; medbench reads them and gives
each attempt its own cassette (`medbench.cassettes.attempt`), because vcrpy's process-wide
patching cannot serve attempts in flight together. Cassettes live in
`cassettes/<model-slug>/[<run-name>/]<task_id>.json` beside a `manifest.json` naming the run
identity they were recorded with; cassettes of other settings are refused before any task runs.

A replay that only the presence of cassettes chose (no `--run-name`, no `--record-mode`) is
settled against what the folder holds, so the README's commands run as written in a clone
that ships recordings: a sub-folder recorded with this session's settings is replayed
(`--protocol=tools` finds `cassettes/reference/tools/`), and a built-in model, which costs
nothing to run, runs live when no recording matches (`--tasks=official`). A real model's
session is still refused, so a recording never turns into a paid live run by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from medbench.cassettes import files as cassette_files
from medbench.cassettes.attempt import CassettePlan
from medbench.environment import Environment
from medbench.scrubbing import Scrubber
from medbench.settings import Settings, slug

DEFAULT_CASSETTES_DIR = "cassettes"
# Where a replay "sends" requests: the cassette answers them; a host under .invalid can never resolve.
OFFLINE_HOST = "replay.invalid"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("medbench")
    group.addoption(
        "--cassettes-dir",
        dest="medbench_cassettes_dir",
        default=None,
        metavar="DIR",
        help="root of the VCR cassettes, one folder per model slug (default: <rootdir>/cassettes). "
        "Existing cassettes for the model mean replay unless --record-mode or "
        "--disable-recording says otherwise",
    )


def cassette_plan(config: pytest.Config, settings: Settings) -> CassettePlan | None:
    """The session's one decision: None runs live; otherwise every attempt gets a cassette in this mode."""
    root = Path(config.getoption("medbench_cassettes_dir") or config.rootpath / DEFAULT_CASSETTES_DIR)
    folder = cassette_files.cassette_dir(
        root, slug(settings.model), slug(settings.run_name) if settings.run_name else None
    )
    mode = cassette_files.choose_record_mode(
        _option(config, "--record-mode"), bool(_option(config, "--disable-recording")), folder
    )
    scrubber = Scrubber.of(settings.api_key, settings.extra_headers)
    return CassettePlan(folder, mode, scrubber) if mode is not None else None


def settle_default_plan(
    config: pytest.Config, settings: Settings, plan: CassettePlan | None, identity: dict[str, Any]
) -> tuple[CassettePlan | None, str | None]:
    """The plan after looking at the recorded settings, and a note saying why it changed (or None)."""
    if plan is None or not plan.replaying or settings.run_name or _option(config, "--record-mode") is not None:
        return plan, None
    identity = _without_run_name(identity)
    differences = _differences(plan.folder, identity)
    if not differences:
        return plan, None
    for sub in sorted(path for path in plan.folder.iterdir() if path.is_dir()):
        if cassette_files.has_cassettes(sub) and _differences(sub, identity) == []:
            note = (
                f"the cassettes in {plan.folder} were recorded with other settings; "
                f"{sub} was recorded with these (same as --run-name={sub.name})"
            )
            return CassettePlan(sub, plan.mode, plan.scrubber), note
    if settings.is_builtin:
        note = (
            f"running live: the cassettes in {plan.folder} were recorded with other settings "
            f"({'; '.join(differences or [])}); to record this run, add --run-name=NAME --record-mode=once"
        )
        return None, note
    return plan, None


def recorded_sets(folder: Path) -> list[str]:
    """`--run-name=tools` for each sub-folder of a model's cassettes that holds a recording."""
    if not folder.is_dir():
        return []
    return [f"--run-name={sub.name}" for sub in sorted(folder.iterdir()) if cassette_files.has_cassettes(sub)]


def _differences(folder: Path, identity: dict[str, Any]) -> list[str] | None:
    """How the folder's recorded identity differs from this one; None when it has no readable manifest."""
    try:
        manifest = cassette_files.read_manifest(folder)
    except cassette_files.ReplayError:
        return None
    if manifest is None:
        return None
    return cassette_files.identity_differences(manifest.get("identity", {}), identity)


def _without_run_name(identity: dict[str, Any]) -> dict[str, Any]:
    # One cassette per attempt: a shard records and replays the same cassettes as the whole run.
    return {key: value for key, value in identity.items() if key not in ("run_name", "shard")}


def describe(plan: CassettePlan | None) -> str:
    if plan is None:
        return "medbench cassettes: none (live run)"
    action = "replaying" if plan.replaying else f"recording (--record-mode={plan.mode})"
    return f"medbench cassettes: {action} {plan.folder}"


def check_and_mark(plan: CassettePlan, identity: dict[str, Any], task_set: dict[str, Any]) -> None:
    """Refuse cassettes of other settings (ReplayError); a recording session writes the folder's manifest."""
    identity = _without_run_name(identity)
    try:
        cassette_files.check_manifest(plan.folder, plan.mode, identity)
    except cassette_files.ReplayError as error:
        others = recorded_sets(plan.folder)
        if others:
            raise cassette_files.ReplayError(f"{error} Other recorded sets here: {', '.join(others)}.") from None
        raise
    if plan.recording and (plan.mode in ("all", "rewrite") or cassette_files.read_manifest(plan.folder) is None):
        cassette_files.write_manifest(plan.folder, cassette_files.build_manifest(identity, task_set))


def offline_environment(plan: CassettePlan, settings: Settings) -> Environment:
    """A replay starts no FHIR server: requests go to a host that cannot resolve, and the cassette answers."""
    return Environment(
        f"http://{OFFLINE_HOST}/fhir/", settings.fhir_display_url, f"replay:{plan.folder.name}", "replay"
    )


def offline_model(settings: Settings) -> Any:
    """The model client of a replay: the recorded URL path on an unreachable host, no key needed."""
    from medbench.models.client import OpenAIChatModel

    s = settings
    if s.agent_url is not None:  # an agent run: the recorded path on an unreachable host, no agent running
        from medbench.a2a.client import A2AAgent

        agent = urlsplit(s.agent_url)
        return A2AAgent(urlunsplit((agent.scheme, OFFLINE_HOST, agent.path, "", "")), timeout=s.call_limits.timeout)
    base = "http://127.0.0.1/v1" if s.is_builtin else (s.base_url or "https://api.openai.com/v1")
    parts = urlsplit(base)
    offline = urlunsplit((parts.scheme or "http", OFFLINE_HOST, parts.path, parts.query, ""))
    return OpenAIChatModel(
        s.model,
        offline,
        api_key=None if s.is_builtin else s.api_key,
        extra_headers=None if s.is_builtin else (s.extra_headers or None),
        temperature=s.temperature,
        max_tokens=s.max_tokens,
        **s.call_limits.client_kwargs(),
    )


def _option(config: pytest.Config, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:
        return None  # pytest-recording not loaded (-p no:recording): live
