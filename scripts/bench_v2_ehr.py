"""Measure the v2 EHR: cohort size, resources and the cold build time of its database.

    python scripts/bench_v2_ehr.py [--scale small|medium|full] [--seed 0] [--official-dir ../shared/medagentbench_v2]

Builds into a fresh temporary cache (nothing shared is touched): the unseated database
(generated-v2) and, when the official v2 tasks can be loaded, the seated one (--tasks=v2)."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from medbench.ehr.v2.cohort import build_v2_cohort
from medbench.ehr.v2.population import ensure_v2_database, v2_population
from medbench.ehr.v2.seating import V2Seating
from medbench.tasks.v2 import V2AssetsError, load_v2

ROOT = Path(__file__).resolve().parents[1]


def measure(label: str, seed: int, scale: str, seating: V2Seating | None, cache: Path) -> None:
    started = time.perf_counter()
    cohort = build_v2_cohort(seed, scale, seating)
    cohort_s = time.perf_counter() - started
    v2_ids = {p.mrn for p in cohort.patients}
    counts: Counter[str] = Counter()
    for resource in v2_population(seed, scale, seating).iter_resources():
        subject = resource.get("subject", {}).get("reference", "")
        if subject.removeprefix("Patient/") in v2_ids:
            counts[resource["resourceType"]] += 1
    started = time.perf_counter()
    path = ensure_v2_database(seed, scale, seating, cache_dir=cache)
    build_s = time.perf_counter() - started
    print(
        f"{label}: {len(cohort.patients)} v2 patients, {sum(counts.values())} v2 resources {dict(sorted(counts.items()))}"
    )
    print(
        f"  cohort {cohort_s:.3f} s; cold database build (background + v2) {build_s:.1f} s, {path.stat().st_size / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--official-dir", type=Path, default=ROOT.parent / "shared" / "medagentbench_v2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        measure(f"generated-v2 ({args.scale})", args.seed, args.scale, None, Path(cache))
        try:
            seating = V2Seating.for_tasks(load_v2(official_dir=args.official_dir).tasks)
        except V2AssetsError as error:
            print(f"official v2 tasks not measured: {error}")
            return
        measure(f"v2 seated ({args.scale})", args.seed, args.scale, seating, Path(cache))


if __name__ == "__main__":
    main()
