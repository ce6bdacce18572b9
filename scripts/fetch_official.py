"""Pre-fill the medbench cache with the official MedAgentBench assets, verified by hash.

Run once on a machine with internet access; later runs of `pytest tests_bench --tasks=official`
then work offline. Usage: python scripts/fetch_official.py [--cache-dir DIR] [--download-base URL]
"""

from __future__ import annotations

import argparse
import sys

from medbench.tasks.official import (
    ASSET_FILES,
    EXPECTED_SHA256,
    OfficialAssetsError,
    fetch_official,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache-dir",
        help="medbench cache root (default: $MEDBENCH_CACHE_DIR or the platform user cache); assets go to <root>/official",
    )
    parser.add_argument(
        "--download-base",
        help="base URL of the upstream repository files (default: $MEDBENCH_OFFICIAL_URL or "
        "https://raw.githubusercontent.com/stanfordmlgroup/MedAgentBench/main/)",
    )
    args = parser.parse_args(argv)
    try:
        folder = fetch_official(cache_dir=args.cache_dir, download_base=args.download_base)
    except OfficialAssetsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name in ASSET_FILES:
        print(f"{folder / name}  sha256 {EXPECTED_SHA256[name]}  verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
