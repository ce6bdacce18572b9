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
    on_started: Callable[[int], None] | None = None,
) -> dict[str, Any] | None:
    """Run every attempt not yet recorded (with `resume`), `settings.concurrency` at a time; return the summary.

    `progress` hears the EHR build's resource count; `on_started` the number of attempts about to
    run, once setup is done; `on_result` each finished attempt, in task order. `settings.task_ids`
    keeps exactly those tasks (an unknown id is a SetupError)."""
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
            cases = [case for case in selected_cases(bench) if case.key not in bench.recorded]
            if on_started is not None:
                on_started(len(cases))
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


def selected_cases(bench: BenchSession) -> list[Case]:
    """The session's attempts, narrowed to `settings.task_ids` when some are named."""
    cases = bench.cases()
    wanted = bench.settings.task_ids
    if not wanted:
        return cases
    unknown = sorted(set(wanted) - {task.id for task in bench.task_set.tasks})  # whichever shard runs it
    if unknown:
        raise SetupError(
            f"--task-id: no task {', '.join(unknown)} in this task set (ids look like task1_1 .. task10_30)"
        )
    return [case for case in cases if case.task_id in wanted]


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
