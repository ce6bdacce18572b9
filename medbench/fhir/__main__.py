"""`python -m medbench.fhir serve --port 8080 --scale full`: run the embedded FHIR server standalone,
e.g. to point another harness (or a browser) at the synthetic EHR as if it were the Docker image."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from medbench.ehr.cache import ensure_database
from medbench.fhir.server import FhirServer

log = logging.getLogger("medbench.fhir")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (what `kill`, systemd and docker send) stops the server like Ctrl-C: connections
    closed, database closed, exit status 0."""
    raise KeyboardInterrupt


def _database(args: argparse.Namespace) -> Path:
    """The cached database `--ehr` names, built first when needed."""
    if args.ehr == "v1":
        return ensure_database(seed=args.seed, scale=args.scale, cache_dir=args.cache_dir)
    from medbench.ehr.v2.population import ensure_v2_database
    from medbench.ehr.v2.seating import V2Seating
    from medbench.tasks.v2 import load_v2

    seating = None
    if args.ehr == "v2":
        seating = V2Seating.for_tasks(load_v2(official_dir=args.official_dir, cache_dir=args.cache_dir).tasks)
    return ensure_v2_database(seed=args.seed, scale=args.scale, seating=seating, cache_dir=args.cache_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medbench.fhir", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the synthetic EHR over HTTP until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    serve.add_argument(
        "--scale", default="small", choices=["small", "medium", "full"], help="EHR scale (default small)"
    )
    serve.add_argument("--seed", type=int, default=0, help="EHR seed (default 0)")
    serve.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="medbench cache root (default $MEDBENCH_CACHE_DIR or the user cache)",
    )
    serve.add_argument("--db", type=Path, default=None, help="serve this built SQLite file instead of the cached EHR")
    serve.add_argument(
        "--ehr",
        default="v1",
        choices=["v1", "generated-v2", "v2"],
        help="which EHR: v1 (default), the MedAgentBench v2 EHR drawn for generated-v2, or the v2 EHR "
        "seated for the official v2 tasks (read from --official-dir, $MEDBENCH_V2_DIR or the cache)",
    )
    serve.add_argument(
        "--official-dir", type=Path, default=None, help="where the official v2 files are (with --ehr=v2)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    db_path = args.db
    if db_path is None:
        started = time.perf_counter()
        db_path = _database(args)
        log.info("EHR database %s ready in %.1f s", db_path, time.perf_counter() - started)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    server = FhirServer(db_path, host=args.host, port=args.port)
    server.serve_forever(on_ready=lambda ready: log.info("FHIR server at %s (Ctrl-C to stop)", ready.base_url))
    log.info("FHIR server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
