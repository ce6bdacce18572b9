"""`python -m medbench` (also installed as the `medbench` command): the benchmark without pytest, and the cache.

    python -m medbench run --model=reference --concurrency=8     # run_benchmark, the plugin's options
    python -m medbench cache info                                 # where the caches are, and their sizes
    python -m medbench cache clear                                # delete them, saying how much was freed

`run` reads the plugin's own option declarations (`medbench.plugin.options`), so every option,
environment variable and default is the one `pytest tests_bench` knows: written once. No pytest
session is started; `medbench.runner.run_benchmark` does the work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from medbench import cache, commandline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m medbench",
        description="medbench without pytest: run the benchmark, inspect or clear the caches.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the benchmark (same options as `pytest tests_bench`, see --help)",
        description="Run every task of the task set through the agent loop and grader, write the results "
        "folder and print the summary. Options, environment variables and defaults are the pytest "
        "plugin's; exit 0 when every gate holds, 1 when one fails, 4 on a setup error.",
    )
    commandline.add_run_options(run)
    cache.add_cache_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return commandline.run(args)
    return cache.run_cache_command(args)


if __name__ == "__main__":
    sys.exit(main())
