"""Run the reference model and the adversarial built-in models with `--grader=state`, then print the
agreement report (state verdicts against the official and corrected transcript verdicts, and why).

Each model runs the whole task set in execute post-mode through the pytest-free runner
(`medbench.runner.run_benchmark`); the report is `python -m medbench.reports agreement` on the
results folder. Figures go in the issue note and docs/graders.md, never into timed test assertions.

    python scripts/state_agreement.py                                  # generated tasks, full-scale EHR
    python scripts/state_agreement.py --tasks official --ehr-scale small --results-dir /tmp/agreement
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medbench.models.builtin.adversaries import ADVERSARIES
from medbench.reports.agreement import agreement_report
from medbench.runner import run_benchmark
from medbench.settings import DEFAULT_EHR_SCALE, Settings, slug


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="generated")
    parser.add_argument("--ehr-scale", default=DEFAULT_EHR_SCALE)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--results-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--models", nargs="+", default=["reference", *ADVERSARIES])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = args.results_dir or Path(tempfile.mkdtemp(prefix="medbench-agreement-"))
    for model in args.models:
        started = time.perf_counter()
        summary = run_benchmark(
            Settings(
                model=model,
                tasks=args.tasks,
                ehr_scale=args.ehr_scale,
                post_mode="execute",
                grader="state",
                concurrency=args.concurrency,
                results_dir=results,
            )
        )
        correct = summary["correct"] if summary else "?"
        print(
            f"{model}: {correct}/{summary['total'] if summary else '?'} correct under state "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    print()
    print(agreement_report([results / slug(m) for m in args.models], as_json=args.json), end="")


if __name__ == "__main__":
    main()
