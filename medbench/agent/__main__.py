"""`python -m medbench.agent tools [--tasks SPEC] [--names]`: the tools a task set is given in tools mode.

Prints the OpenAI `tools` list the endpoint receives with `--protocol=tools` (JSON), or with
`--names` one line per tool: name, the text-protocol action it stands for, and the catalog entry
it comes from. `--prompt TASK_ID` prints that task's opening user turn in tools mode instead.
Only the function catalog is read for `--tasks=generated` (nothing is built).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medbench.agent.tools import build_tools, tools_prompt
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE
from medbench.settings import DEFAULT_EHR_SCALE, EHR_SCALES


def _catalog(spec: str, official_dir: Path | None) -> list[dict[str, Any]]:
    from medbench.tasks import load_task_file, official_presentation
    from medbench.tasks.generated import generated_presentation

    if spec == "generated":
        return generated_presentation().functions
    if spec == "official":
        return official_presentation(official_dir=official_dir).functions
    return load_task_file(Path(spec)).functions


def _prompt(args: argparse.Namespace) -> str:
    from medbench.runner.session import load_task_set
    from medbench.settings import Settings

    population = None
    if args.tasks == "generated":
        from medbench.ehr.population import build_population

        population = build_population(seed=args.ehr_seed, scale=args.ehr_scale)
    settings = Settings(tasks=args.tasks, task_seed=args.task_seed, official_dir=args.official_dir)
    task_set = load_task_set(settings, population)
    return tools_prompt(task_set.by_id(args.prompt), args.fhir_display_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medbench.agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tools = commands.add_parser("tools", help="print the tools of a task set in tools mode (--protocol=tools)")
    tools.add_argument(
        "--tasks",
        default="generated",
        metavar="SPEC",
        help="generated (default), official, or a task file (as pytest --tasks)",
    )
    tools.add_argument(
        "--official-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="official assets (else $MEDBENCH_OFFICIAL_DIR, the cache, or a download)",
    )
    tools.add_argument("--names", action="store_true", help="one line per tool instead of the JSON schemas")
    tools.add_argument("--prompt", metavar="TASK_ID", help="print this task's tools-mode prompt instead")
    tools.add_argument(
        "--fhir-display-url",
        default=DEFAULT_DISPLAY_BASE,
        metavar="URL",
        help=f"with --prompt: the base URL the prompt shows (default {DEFAULT_DISPLAY_BASE})",
    )
    for flag, default in (("--task-seed", 0), ("--ehr-seed", 0)):
        tools.add_argument(flag, type=int, default=default, metavar="N", help="with --prompt: as the pytest option")
    tools.add_argument(
        "--ehr-scale",
        default=DEFAULT_EHR_SCALE,
        choices=EHR_SCALES,
        help=f"with --prompt: the EHR generated tasks are drawn from (default {DEFAULT_EHR_SCALE}, as pytest)",
    )
    args = parser.parse_args(argv)
    from medbench.tasks import OfficialAssetsError, TaskFileError

    try:
        if args.prompt:
            print(_prompt(args))
            return 0
        toolset = build_tools(_catalog(args.tasks, args.official_dir))
    except (OfficialAssetsError, TaskFileError, FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.names:
        for tool in toolset.tools:
            print(f"{tool.name:34} {tool.action:6} {tool.source or 'medbench (medbench/data/tools_mode.json)'}")
    else:
        print(json.dumps(toolset.specs(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
