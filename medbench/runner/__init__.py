"""The benchmark without pytest: task set -> environment -> agent loop -> grader -> record -> summary.

The pytest plugin (`medbench.plugin`) is thin wiring over these modules; a script or another
harness can run the same pipeline directly:

    from medbench.runner import run_benchmark
    from medbench.settings import Settings
    summary = run_benchmark(Settings(model="reference", ehr_scale="small", concurrency=8))
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from medbench.results.summary import build_summary
from medbench.runner.attempts import AttemptPool, AttemptResult, AttemptRunner
from medbench.runner.session import BenchSession, Case
from medbench.settings import Settings, SetupError


def new_session_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def write_summary(bench: BenchSession, run_seconds: float) -> dict[str, Any] | None:
    """Record this session's run time (setup excluded) and rebuild summary.json from the files."""
    folder = bench.folder
    with folder.lock():
        manifest = folder.read_manifest()
        if manifest is None or bench.session not in manifest.get("sessions", []):
            return None
        manifest.setdefault("session_elapsed", {})[bench.session] = round(run_seconds, 3)
        if bench.setup_seconds is not None:
            manifest.setdefault("session_setup", {})[bench.session] = bench.setup_seconds
        folder.write_manifest(manifest)
        summary = build_summary(manifest, folder.records())
        folder.write_summary(summary)
    return summary


def run_benchmark(
    settings: Settings,
    *,
    progress: Callable[[int], None] | None = None,
    on_result: Callable[[AttemptResult], None] | None = None,
) -> dict[str, Any] | None:
    """Run every attempt not yet recorded (with `resume`), `settings.concurrency` at a time; return the summary."""
    import time

    bench = BenchSession(settings, new_session_id())
    try:
        bench.start(progress=progress)
        assert bench.environment is not None
        started = time.perf_counter()
        with bench.open_model() as model:
            runner = AttemptRunner(
                session=bench.session,
                settings=settings,
                task_set=bench.task_set,
                environment=bench.environment,
                model=model,
                folder=bench.folder,
            )
            pool = AttemptPool(runner, settings.concurrency)
            wanted = set(settings.task_ids)  # --task-id: exactly these tasks
            cases = [c for c in bench.cases() if c.key not in bench.recorded and (not wanted or c.task_id in wanted)]
            pool.submit(cases)
            try:
                for case in cases:
                    result = pool.result(case)
                    if on_result is not None:
                        on_result(result)
            finally:
                pool.stop()
        return write_summary(bench, time.perf_counter() - started)
    finally:
        bench.close()


__all__ = [
    "AttemptPool",
    "AttemptResult",
    "AttemptRunner",
    "BenchSession",
    "Case",
    "SetupError",
    "new_session_id",
    "run_benchmark",
    "write_summary",
]
