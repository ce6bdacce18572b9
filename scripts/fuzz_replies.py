"""Fuzz the harness with hostile model replies: crashes, unrecorded attempts, off-base requests.

    python scripts/fuzz_replies.py                       # 10,000 replies, in-process model
    python scripts/fuzz_replies.py --via-endpoint        # the replies over HTTP through the openai SDK
    python scripts/fuzz_replies.py --replies 2000 --seed 7 --scale medium

Starts the embedded FHIR server (real HTTP, SQLite) with the generated task set, and runs
`medbench.testing.hostile_replies.run_campaign`: random and adversarial replies (URLs aimed at a trap server in
every spelling, lone surrogates, JSON nested thousands deep, huge numbers, junk) through the
agent loop, both grader modes, both post modes and the result writer. Prints the figures; the
exit status is 1 when any crash, unrecorded attempt or off-base request was seen.
"""

from __future__ import annotations

import argparse
import json
import sys

from medbench.ehr.cache import ensure_database
from medbench.ehr.population import build_population
from medbench.fhir import FhirServer
from medbench.tasks import load_task_set
from medbench.testing.hostile_replies import run_campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=10_000, help="model replies to send (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", default="small", choices=("small", "medium", "full"), help="EHR scale")
    parser.add_argument(
        "--via-endpoint",
        action="store_true",
        help="serve the replies from a local OpenAI-compatible endpoint through the real client",
    )
    args = parser.parse_args(argv)
    task_set = load_task_set("generated", population=build_population(scale=args.scale))
    with FhirServer(ensure_database(0, args.scale)) as server:
        figures = run_campaign(args.replies, server.base_url, task_set, seed=args.seed, via_endpoint=args.via_endpoint)
    print(f"replies              {figures.replies}")
    print(f"attempts             {figures.attempts}")
    print(f"crashes              {figures.crashes}")
    print(f"unrecorded attempts  {figures.unrecorded_attempts}")
    print(f"off-base requests    {figures.off_base_requests}")
    print(f"refused (counted)    {figures.refused_requests}")
    print(f"statuses             {json.dumps(dict(sorted(figures.statuses.items())))}")
    print(f"seconds              {figures.seconds}")
    for example in figures.examples:
        print(f"  e.g. {example!r}")
    return 1 if figures.crashes or figures.unrecorded_attempts or figures.off_base_requests else 0


if __name__ == "__main__":
    sys.exit(main())
