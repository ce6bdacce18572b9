"""Check that a FHIR server puts every official task in its real grading situation.

Recomputes each official task's situation through the graders' own reads and compares it with
medbench/data/official_situations.jsonl. Without --fhir-url it checks the embedded EHR seated by
situation (what `pytest tests_bench --tasks=official` serves); with --fhir-url any server, e.g.
the official MedAgentBench Docker image. Usage:
    python scripts/check_situations.py [--scale full] [--seed 0] [--official-dir DIR]
    python scripts/check_situations.py --fhir-url http://localhost:8080/fhir/
Exit status 0 when all 300 situations are equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from medbench.ehr.seating import Seating
from medbench.ehr.situations import load_situations
from medbench.environment.gateway import DEFAULT_DISPLAY_BASE, FhirGateway
from medbench.environment.provision import embedded_server
from medbench.grading.fhir_reads import ReadError
from medbench.grading.situations import observe_situation, situation_differences
from medbench.tasks import OfficialAssetsError, load_official
from medbench.tasks.task import TaskSet


@contextmanager
def server_gateway(args: argparse.Namespace, task_set: TaskSet) -> Iterator[tuple[FhirGateway, str]]:
    if args.fhir_url:
        base = args.fhir_url if args.fhir_url.endswith("/") else args.fhir_url + "/"
        yield FhirGateway(base, base), base
        return
    with embedded_server(seed=args.seed, scale=args.scale, seating=Seating.for_tasks(task_set.tasks)) as fhir:
        yield FhirGateway(fhir.base_url, DEFAULT_DISPLAY_BASE), DEFAULT_DISPLAY_BASE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-url", help="check this FHIR base URL instead of the embedded EHR")
    parser.add_argument("--scale", default="full", help="embedded EHR scale (default full)")
    parser.add_argument("--seed", type=int, default=0, help="embedded EHR seed (default 0)")
    parser.add_argument("--official-dir", help="official assets (default: $MEDBENCH_OFFICIAL_DIR, cache, download)")
    args = parser.parse_args(argv)
    try:
        task_set = load_official(official_dir=args.official_dir)
    except OfficialAssetsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    known = load_situations()
    differences: list[str] = []
    with server_gateway(args, task_set) as (gateway, api_base):
        for task in task_set.tasks:
            try:
                differences += situation_differences(known[task.id], observe_situation(task, gateway, api_base))
            except ReadError as error:
                differences.append(f"{task.id}: {error}")
    failed = len({line.split(":", 1)[0] for line in differences})
    for line in differences:
        print(line)
    where = args.fhir_url or f"embedded EHR ({args.scale}, seed {args.seed}, seated by situation)"
    print(f"{len(task_set.tasks) - failed}/{len(task_set.tasks)} official tasks in their real situation on {where}")
    return 0 if not differences else 1


if __name__ == "__main__":
    sys.exit(main())
