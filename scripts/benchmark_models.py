r"""The seed harness's command line, as a thin wrapper over the pytest run.

    python scripts/benchmark_models.py --model gpt-4o --base-url https://api.openai.com/v1 --api-key "$KEY"
    python scripts/benchmark_models.py --model qwen3-8b --model llama-3.1-8b --base-url http://localhost:8000/v1 \
        --extra-header X-Team=eval --concurrency 16 -- --tasks=official
    python scripts/benchmark_models.py --model qwen3-8b --base-url http://gpu1:8000/v1 --base-url http://gpu2:8000/v1

Each `--model` runs `pytest tests_bench` once (in this order); anything after `--` goes to pytest
as it is. The key travels in an environment variable, never on pytest's command line. Prints
where each model's results are, and the exit status is the worst of the runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from medbench.settings import slug

ROOT = Path(__file__).resolve().parents[1]
KEY_VARIABLE = "MEDBENCH_WRAPPER_API_KEY"


def pytest_command(args: argparse.Namespace, model: str, passthrough: list[str]) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests_bench",
        f"--model={model}",
        f"--results-dir={args.results_dir}",
        f"--concurrency={args.concurrency}",
    ]
    command += [f"--base-url={url}" for url in args.base_url]  # several: replicas of the model
    if args.shard:
        command.append(f"--shard={args.shard}")
    if args.api_key:
        command.append(f"--api-key-env={KEY_VARIABLE}")
    command += [f"--extra-header={header}" for header in args.extra_header]
    if args.workers:
        command += ["-n", str(args.workers)]
    return command + passthrough


def parse_arguments(own: list[str]) -> argparse.Namespace:
    """This script's own options (those before `--`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model name, repeatable")
    parser.add_argument(
        "--base-url",
        action="append",
        default=[],
        help="OpenAI-compatible endpoint (not needed for the built-in models); repeat it for "
        "replicas of one model, calls go to the least busy one",
    )
    parser.add_argument(
        "--shard", metavar="I/N|auto", help="run only the I-th of N slices of each model's attempts (docs/sharding.md)"
    )
    parser.add_argument("--api-key", help="API key (passed to pytest through an environment variable)")
    parser.add_argument("--extra-header", action="append", default=[], metavar="K=V", help="repeatable")
    parser.add_argument("--results-dir", default="results", help="default: results")
    parser.add_argument("--concurrency", type=int, default=8, help="attempts in flight per process (default 8)")
    parser.add_argument("--workers", type=int, default=0, help="pytest-xdist workers (default 0: one process)")
    return parser.parse_args(own)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    args = parse_arguments(own)
    env = dict(os.environ)
    if args.api_key:
        env[KEY_VARIABLE] = args.api_key
    worst = 0
    for model in args.model:
        print(f"== {model}", flush=True)
        status = subprocess.run(pytest_command(args, model, passthrough), cwd=ROOT, env=env, check=False).returncode
        worst = max(worst, status)
        print(f"results of {model}: {Path(args.results_dir) / slug(model)} (pytest exit status {status})", flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
