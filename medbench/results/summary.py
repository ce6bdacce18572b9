"""summary.json and the terminal table, computed from the records of a run.

Pure functions over plain dicts: the plugin feeds them the manifest and runs.jsonl; reports
and tests can call them on hand-written records. Upstream field names come first and keep
their meaning (accuracy is a percentage of all recorded attempts; every status counts in
the total, so errored attempts are never silently dropped).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from tabulate import tabulate

from medbench.outcomes import (
    COMPLETED,
    CONTEXT_LIMIT,
    ERROR,
    INFRASTRUCTURE_STATUSES,
    INVALID_ACTION,
    LIMIT_REACHED,
    TRUNCATED,
)
from medbench.results.comparability import comparability
from medbench.results.records import MODE_KEYS, record_key
from medbench.results.stats import pass_at_k, pass_hat_k, wilson_interval

# Each status and the summary field upstream counts it in.
UPSTREAM_STATUS_FIELDS = {
    COMPLETED: "completed",
    INVALID_ACTION: "invalid_action",
    LIMIT_REACHED: "limit_reached",
    CONTEXT_LIMIT: "context_limit",
    ERROR: "error",
}


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (task, attempt): the last one written wins, in first-seen order."""
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        by_key[record_key(record)] = record
    return list(by_key.values())


def build_summary(manifest: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary.json of a run: upstream fields, then modes, statistics and provenance."""
    rows = latest_records(records)
    identity = manifest.get("identity", {})
    details = manifest.get("details", {})
    total = len(rows)
    correct = sum(1 for r in rows if r["correct"])
    statuses = Counter(r["status"] for r in rows)
    low, high = wilson_interval(correct, total)
    repeats = int(identity.get("repeats", 1))
    expected = int(details.get("task_count", 0)) * repeats
    if identity.get("shard"):  # a shard's run is complete when its slice is
        expected = int(details.get("shard_attempts", 0))

    environment = {
        **identity.get("environment", {}),
        "display_url": identity.get("fhir_display_url"),
        "fingerprint": _single(sorted({r.get("environment_fingerprint") for r in rows} - {None})),
    }
    if environment.get("kind") == "embedded":
        environment.setdefault("seating", "none")

    summary: dict[str, Any] = {"model": identity.get("model"), "total": total}
    for status, field in UPSTREAM_STATUS_FIELDS.items():
        if field == "completed":
            summary["completed"] = statuses.get(status, 0)
            summary["correct"] = correct
        else:
            summary[field] = statuses.get(status, 0)
    summary["task_breakdown"] = task_breakdown(rows)
    summary["elapsed_seconds"] = elapsed_seconds(manifest, rows)
    summary["accuracy"] = _percent(correct, total)
    # Environment build and endpoint checks, kept out of elapsed_seconds (which counts the run).
    summary["setup_seconds"] = round(sum(manifest.get("session_setup", {}).values()), 2)
    summary.update(
        {
            "accuracy_ci95": [round(low * 100, 2), round(high * 100, 2)],
            "status_counts": dict(sorted(statuses.items())),
            "infrastructure_failures": sum(statuses.get(s, 0) for s in INFRASTRUCTURE_STATUSES),
            "expected_total": expected,
            "complete": expected > 0 and total == expected,
            "task_set": {
                "name": identity.get("task_set"),
                "sha256": identity.get("task_set_sha256"),
                "task_count": details.get("task_count"),
            },
            "modes": {**{key: identity.get(key) for key in MODE_KEYS}, **(identity.get("v2_modes") or {})},
            "environment": environment,
            "comparability": comparability(
                identity.get("task_set"), environment, identity.get("v2_modes"), identity.get("protocol")
            ),
            "sampling": {"temperature": identity.get("temperature"), "max_tokens": identity.get("max_tokens")},
            "endpoint": details.get("endpoint"),
            "repeats": repeat_statistics(rows, repeats),
            "tokens": {
                "prompt": sum(int(r.get("prompt_tokens") or 0) for r in rows),
                "completion": sum(int(r.get("completion_tokens") or 0) for r in rows),
            },
            "latency_s": round(sum(float(r.get("latency_s") or 0.0) for r in rows), 3),
            "refused_requests": sum(int(r.get("refused_requests") or 0) for r in rows),
            "model_calls": model_call_statistics(rows),
            "harness_version": manifest.get("harness_version"),
            "run_name": identity.get("run_name"),
            "created": manifest.get("created"),
            "sessions": list(manifest.get("sessions", [])),
        }
    )
    summary["tokens"]["total"] = summary["tokens"]["prompt"] + summary["tokens"]["completion"]
    if identity.get("shard"):
        summary["shard"] = shard_statistics(identity["shard"], details)
    replicas = replica_statistics(rows, (details.get("endpoint") or {}).get("replicas") or [])
    if replicas:
        summary["replicas"] = replicas
    return summary


def shard_statistics(shard: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """Which slice of which selection this run is (`--shard I/N`), for `python -m medbench.results merge`."""
    selection = details.get("selection") or {}
    return {
        "index": shard.get("index"),
        "count": shard.get("count"),
        "attempts": details.get("shard_attempts"),
        "selection": {"sha256": shard.get("selection_sha256"), "attempts": selection.get("attempts")},
    }


def replica_statistics(rows: list[dict[str, Any]], replicas: list[str]) -> list[dict[str, Any]]:
    """Per replica of the model (repeated --base-url): the calls it answered and the calls that failed there."""
    served: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for row in rows:
        served.update(row.get("replica_calls") or {})
        failed.update(row.get("replica_failures") or {})
    names = list(dict.fromkeys([*replicas, *sorted(served), *sorted(failed)]))
    if not (served or failed):
        return []
    total = sum(served.values())
    return [
        {
            "base_url": name,
            "calls": served[name],
            "share": round(served[name] / total, 4) if total else 0.0,
            "failures": failed[name],
        }
        for name in names
    ]


def model_call_statistics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the endpoint cost beyond the answers: retries, timeouts, time lost, truncated answers.

    `time_lost_s` is model time that produced no answer (failed attempts, timeouts, backoff waits);
    `latency_s` includes it. `truncated_answers` counts answers cut by the token cap, and
    `attempts_ending_truncated` the attempts whose last answer was cut."""
    return {
        "calls": sum(int(r.get("model_calls") or 0) for r in rows),
        "retries": sum(int(r.get("retries") or 0) for r in rows),
        "timeouts": sum(int(r.get("timeouts") or 0) for r in rows),
        "time_lost_s": round(sum(float(r.get("time_lost_s") or 0.0) for r in rows), 3),
        "truncated_answers": sum(int(r.get("truncated_answers") or 0) for r in rows),
        "attempts_ending_truncated": sum(1 for r in rows if r.get("finish_reason") == TRUNCATED),
    }


def model_calls_line(summary: dict[str, Any]) -> str | None:
    """The terminal line about retries, timeouts and truncated answers; None when there were none."""
    calls = summary.get("model_calls") or {}
    if not (calls.get("retries") or calls.get("timeouts") or calls.get("truncated_answers")):
        return None
    return (
        f"model calls: {calls['calls']}, {calls['retries']} retried ({calls['timeouts']} timeouts, "
        f"{calls['time_lost_s']:.1f} s lost to failed attempts and waits); "
        f"{calls['truncated_answers']} answers cut at the token limit "
        f"({calls['attempts_ending_truncated']} attempts ended on one)"
    )


def elapsed_seconds(manifest: dict[str, Any], rows: list[dict[str, Any]]) -> float:
    """Wall time over all sessions; a killed session (no time recorded) counts its first-to-last record span."""
    measured = dict(manifest.get("session_elapsed", {}))
    for session in manifest.get("sessions", []):
        if session not in measured:
            stamps = sorted(
                datetime.fromisoformat(r["finished_at"])
                for r in rows
                if r.get("session") == session and r.get("finished_at")
            )
            measured[session] = (stamps[-1] - stamps[0]).total_seconds() if stamps else 0.0
    return round(sum(measured.values()), 2)


def task_breakdown(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per category: total, correct (upstream), accuracy % and the interval (added)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        groups[_category(row)].append(bool(row["correct"]))
    breakdown: dict[str, dict[str, Any]] = {}
    for name in sorted(groups, key=_category_order):
        verdicts = groups[name]
        low, high = wilson_interval(sum(verdicts), len(verdicts))
        breakdown[name] = {
            "total": len(verdicts),
            "correct": sum(verdicts),
            "accuracy": _percent(sum(verdicts), len(verdicts)),
            "accuracy_ci95": [round(low * 100, 2), round(high * 100, 2)],
        }
    return breakdown


def repeat_statistics(rows: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """Mean pass@1 over attempts, and pass@k / pass^k for k up to the attempts recorded per task."""
    attempts: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        attempts[str(row["task_id"])].append(bool(row["correct"]))
    stats: dict[str, Any] = {"k": repeats, "tasks": len(attempts)}
    if not attempts:
        return stats
    stats["pass@1"] = round(_mean([sum(v) / len(v) for v in attempts.values()]), 4)
    for k in range(2, repeats + 1):
        eligible = [v for v in attempts.values() if len(v) >= k]
        if eligible:
            stats[f"pass@{k}"] = round(_mean([pass_at_k(len(v), sum(v), k) for v in eligible]), 4)
            stats[f"pass^{k}"] = round(_mean([pass_hat_k(len(v), sum(v), k) for v in eligible]), 4)
    return stats


def summary_table(summary: dict[str, Any]) -> str:
    """The per-category table printed at the end of a session."""
    rows = [
        [
            name,
            b["total"],
            b["correct"],
            f"{b['accuracy']:.1f}",
            f"{b['accuracy_ci95'][0]:.1f}-{b['accuracy_ci95'][1]:.1f}",
        ]
        for name, b in summary["task_breakdown"].items()
    ]
    ci = summary["accuracy_ci95"]
    rows.append(["all", summary["total"], summary["correct"], f"{summary['accuracy']:.1f}", f"{ci[0]:.1f}-{ci[1]:.1f}"])
    return tabulate(rows, headers=["category", "total", "correct", "accuracy %", "95% CI"], tablefmt="simple")


def _category(row: dict[str, Any]) -> str:
    if row.get("category"):
        return str(row["category"])
    return str(row["task_id"]).split("_", 1)[0]


def _category_order(name: str) -> tuple[int, str]:
    digits = name.removeprefix("task")
    return (int(digits), name) if digits.isdigit() else (10**6, name)


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _single(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else (values or None)
