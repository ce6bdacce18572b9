"""`python -m medbench.ehr stats --scale full`: resource counts and generation time of a population.

A measurement aid (not a test): shows what a scale holds and how long `build_population` and
`iter_resources()` take on this machine."""

from __future__ import annotations

import argparse
import time
from collections import Counter

from medbench.ehr.population import GENERATOR_VERSION, build_population
from medbench.ehr.scales import SCALES


def _kind(resource: dict) -> str:
    if resource["resourceType"] == "Observation":
        return f"Observation ({resource['category'][0]['coding'][0]['code']})"
    return str(resource["resourceType"])


def stats(seed: int, scale: str) -> None:
    started = time.perf_counter()
    population = build_population(seed=seed, scale=scale)
    built = time.perf_counter()
    counts = Counter(_kind(resource) for resource in population.iter_resources())
    iterated = time.perf_counter()
    with_data = sum(p.has_data for p in population.patients)
    print(
        f"generator {GENERATOR_VERSION}, scale {scale}, seed {seed}: {len(population.patients)} patients ({with_data} with data)"
    )
    for kind, count in sorted(counts.items()):
        print(f"  {kind:32} {count:>8}")
    print(f"  {'total':32} {sum(counts.values()):>8}")
    print(f"build_population {built - started:.2f} s, iter_resources {iterated - built:.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m medbench.ehr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    stats_parser = commands.add_parser("stats", help="count resources per type and time the generator")
    stats_parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    stats_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stats(args.seed, args.scale)


if __name__ == "__main__":
    main()
