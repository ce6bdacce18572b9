"""Benchmark: the transcript viewer at 15 models x 300 tasks, timed in headless Chromium.

    python scripts/bench_viewer.py                         # 15 x 300, ~46 MB of transcripts per model
    python scripts/bench_viewer.py --models 3 --kb-per-attempt 20 --keep /tmp/viewer-bench

Builds a synthetic results folder (one folder per model: runs.jsonl, transcripts.jsonl and
summary.json written with the harness's own record builders; prompts from the generated task
set's template; FHIR bodies rendered by the embedded server's HAPI-style renderer from the
synthetic EHR), writes the report with its transcript viewer, then opens transcripts.html from
disk in headless Chromium (Debian `chromium` + `chromium-driver`) and measures: time until the
list is shown, JS heap and the browser's memory (PSS of all its processes), then opening the
largest transcript with every body unfolded, a search over all attempts, and two models side by
side. A benchmark, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medbench.agent.prompt import build_prompt  # noqa: E402
from medbench.agent.protocol import POST_ACCEPTED, get_ok_turn  # noqa: E402
from medbench.ehr import build_population  # noqa: E402
from medbench.fhir.bundle import render, searchset  # noqa: E402
from medbench.reports.analysis import analyse, write_csvs  # noqa: E402
from medbench.reports.browser import find_chromium, headless_chromium  # noqa: E402
from medbench.reports.report import write_report  # noqa: E402
from medbench.reports.viewer import write_viewer  # noqa: E402
from medbench.results.records import run_record, transcript_record  # noqa: E402
from medbench.tasks.task import Task, TaskSet  # noqa: E402

BASE = "http://localhost:8080/fhir/"
STATUSES = ["agent_invalid_action", "limit_reached", "error"]


class Outcome:
    """The fields the results writer reads from an agent-loop outcome."""

    def __init__(self, task_id: str, status: str, history: list[dict[str, str]], answer: str, turns: int) -> None:
        self.task_id, self.status, self.history, self.num_turns = task_id, status, history, turns
        self.result = answer if status == "completed" else None
        self.prompt_tokens, self.completion_tokens = 4000 * turns, 60 * turns
        self.model_latency_s, self.model_calls, self.retries = 1.5 * turns, turns, 0
        self.error = None if status == "completed" else f"{status} (synthetic)"
        self.calls = [
            {"ok": True, "latency_s": 1.5, "prompt_tokens": 4000, "completion_tokens": 60, "retries": 0}
        ] * turns


class Verdict:
    def __init__(self, correct: bool, reason: str | None) -> None:
        self.correct, self.reason = correct, reason


def task_set(count: int) -> TaskSet:
    tasks = tuple(
        Task(
            id=f"task{c}_{n}",
            category=c,
            instruction=f"Synthetic question {n} of category {c} about patient S{1000000 + 37 * n + c}.",
            context="It's 2023-11-13T10:15:00+00:00 now.",
            eval_MRN="S1000000",
        )
        for c in range(1, 11)
        for n in range(1, count // 10 + 1)
    )
    return TaskSet(
        "generated-bench",
        tasks,
        (ROOT / "medbench" / "data" / "prompt_generated.txt").read_text(encoding="utf-8"),
        json.loads((ROOT / "medbench" / "data" / "functions_generated.json").read_text(encoding="utf-8")),
    )


def bundle_pool(size: int = 40) -> list[str]:
    """Searchset bodies of the synthetic EHR, 1 to 150 Observations each, as the server prints them."""
    observations = [r for r in build_population(0, "small").iter_resources() if r["resourceType"] == "Observation"]
    rng = random.Random(1)
    pool = []
    for _ in range(size):
        chosen = rng.sample(observations, rng.randint(1, 150))
        pool.append(render(searchset(BASE.rstrip("/"), chosen, [("self", BASE + "Observation?code=GLU")], len(chosen))))
    return pool


def conversation(
    prompt: str, mrn: str, pool: list[str], target_chars: int, rng: random.Random
) -> tuple[list[dict[str, str]], str]:
    history = [{"role": "user", "content": prompt}]
    size = len(prompt)
    while size < target_chars and len(history) < 15:
        fitting = [body for body in pool if len(body) <= target_chars - size]
        body = rng.choice(fitting or [min(pool, key=len)])
        history += [
            {"role": "agent", "content": f"GET {BASE}Observation?patient={mrn}&code=GLU&_count=5000"},
            {"role": "user", "content": get_ok_turn(body)},
        ]
        size += len(body)
    if rng.random() < 0.3:
        history += [
            {"role": "agent", "content": f'POST {BASE}MedicationRequest\n{{"resourceType": "MedicationRequest"}}'},
            {"role": "user", "content": POST_ACCEPTED},
        ]
    answer = f"[{rng.randint(50, 200)}]"
    history.append({"role": "agent", "content": f"FINISH({answer})"})
    return history, answer


def build_results(root: Path, models: int, tasks: TaskSet, kb_per_attempt: float) -> float:
    """One folder per model; returns megabytes of transcripts per model (mean)."""
    pool = bundle_pool()
    sizes = []
    for m in range(models):
        rng = random.Random(m)
        accuracy = 0.3 + 0.6 * m / max(models - 1, 1)
        folder = root / f"model-{m:02d}"
        folder.mkdir(parents=True)
        with (
            (folder / "runs.jsonl").open("w", encoding="utf-8") as runs,
            (folder / "transcripts.jsonl").open("w", encoding="utf-8") as transcripts,
        ):
            for index, task in enumerate(tasks.tasks):
                prompt = build_prompt(tasks, task, BASE)
                history, answer = conversation(
                    prompt, f"S{1000000 + 37 * index}", pool, int(kb_per_attempt * 1000 * rng.uniform(0.3, 1.7)), rng
                )
                correct = rng.random() < accuracy
                status = "completed" if correct or rng.random() < 0.7 else rng.choice(STATUSES)
                wrong = f"task{task.category}: answer {answer} != expected [1]"
                reason = None if correct else wrong if status == "completed" else status
                outcome = Outcome(task.id, status, history, answer, sum(t["role"] == "agent" for t in history))
                run = run_record(
                    index=index,
                    category=task.category,
                    attempt=1,
                    session="bench",
                    outcome=outcome,
                    verdict=Verdict(correct, reason),
                    elapsed_s=2.0,
                    environment_fingerprint="bench",
                )
                transcripts.write(json.dumps(transcript_record(run, outcome), ensure_ascii=False) + "\n")
                runs.write(json.dumps(run, ensure_ascii=False) + "\n")
        (folder / "summary.json").write_text(
            json.dumps(
                {
                    "model": f"model-{m:02d}",
                    "task_set": {"name": tasks.name, "sha256": tasks.sha256, "task_count": len(tasks.tasks)},
                    "modes": {"protocol": "text", "grader": "official"},
                }
            ),
            encoding="utf-8",
        )
        sizes.append((folder / "transcripts.jsonl").stat().st_size / 1e6)
    return statistics.mean(sizes)


def browser_pss_mb(driver: Any) -> float:
    """Proportional set size of chromedriver's descendants (the browser processes), in MB."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
        except (OSError, KeyError, ValueError):
            continue
    todo, total = list(children.get(driver.service.process.pid, [])), 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return total / 1024


def heap_mb(driver: Any) -> float:
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize") / 1e6


WAIT_READY = """
const done = arguments[arguments.length - 1];
(function poll() { document.body.dataset.ready === "1" ? done(window.medbenchReadyAt) : setTimeout(poll, 5); })();
"""
OPEN_LARGEST = """
const done = arguments[arguments.length - 1];
const row = document.querySelector(arguments[0]);
const started = performance.now();
row.click();
(function poll() {
  const view = document.querySelector("tr.detail .transcript");
  if (view && view.querySelector("details")) {
    view.querySelectorAll("details").forEach((d) => { d.open = true; });
    (function filled() {  // bodies enter the page on each fold's toggle event
      const bodies = [...view.querySelectorAll("details > pre")];
      bodies.every((pre) => pre.textContent.length > 0) ? done([performance.now() - started, view.textContent.length])
                                                         : setTimeout(filled, 2);
    })();
  } else setTimeout(poll, 2);
})();
"""
SEARCH = """
const done = arguments[arguments.length - 1];
const input = document.getElementById("search");
const before = document.getElementById("count").textContent;
const started = performance.now();
input.value = arguments[0];
input.dispatchEvent(new Event("input"));
(function poll() {
  const now = document.getElementById("count").textContent;
  now !== before ? done([performance.now() - started, now]) : setTimeout(poll, 2);
})();
"""


def measure(page: Path, loads: int) -> dict[str, Any]:
    found = find_chromium()
    if isinstance(found, str):
        raise SystemExit(found)
    driver = headless_chromium(*found)
    driver.set_script_timeout(100)
    try:
        driver.execute_cdp_cmd("Performance.enable", {})
        driver.execute_cdp_cmd("HeapProfiler.enable", {})  # collectGarbage hangs without it
        driver.get("about:blank")
        blank = browser_pss_mb(driver)
        ready = []
        for _ in range(loads):
            driver.get("about:blank")
            driver.get(page.as_uri())
            ready.append(driver.execute_async_script(WAIT_READY))
        figures: dict[str, Any] = {
            "ready_ms": ready,
            "browser_pss_blank_mb": blank,
            "heap_after_load_mb": heap_mb(driver),
            "browser_pss_after_load_mb": browser_pss_mb(driver),
            "count_text": driver.find_element("id", "count").text,
        }
        # m00 holds the leaderboard's first model; find the largest transcript of it
        largest = max(page.parent.joinpath("transcripts", "m00").glob("t*.js"), key=lambda p: p.stat().st_size)
        figures["largest_transcript_kb"] = largest.stat().st_size / 1000
        index_text = (largest.parent / "index.js").read_text(encoding="ascii")
        rows = json.loads(index_text[index_text.index(",") + 1 : -3])
        task_id = next(row["t"] for row in rows if row["f"] == largest.stem)
        first = driver.execute_script(
            "return JSON.parse(document.getElementById('manifest').textContent).models[0].slug"
        )
        driver.get("about:blank")
        driver.get(page.as_uri() + f"#model={first}&q={task_id}")
        driver.execute_async_script(WAIT_READY)
        figures["open_largest_ms"], figures["open_largest_chars"] = driver.execute_async_script(
            OPEN_LARGEST, f'tr.attempt[data-task="{task_id}"]'
        )
        figures["heap_with_transcript_mb"] = heap_mb(driver)
        figures["browser_pss_with_transcript_mb"] = browser_pss_mb(driver)
        driver.get("about:blank")
        driver.get(page.as_uri())
        driver.execute_async_script(WAIT_READY)
        figures["search_ms"], figures["search_count"] = driver.execute_async_script(SEARCH, "expected [1]")
        started = time.perf_counter()
        driver.get("about:blank")
        driver.get(page.as_uri() + f"#compare={task_id}&with={first}&with=model-00")
        driver.execute_async_script(WAIT_READY)
        driver.execute_async_script("""
const done = arguments[arguments.length - 1];
(function poll() { document.querySelectorAll("#compare .transcript details").length >= 2 ? done() : setTimeout(poll, 5); })();""")
        figures["side_by_side_load_ms"] = (time.perf_counter() - started) * 1000
        return figures
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=300, help="a multiple of 10")
    parser.add_argument(
        "--kb-per-attempt",
        type=float,
        default=130.0,
        help="thousands of characters of prompt and FHIR bodies per attempt, on average; the default "
        "gives ~46 MB of transcripts.jsonl per 300 tasks, as full-scale runs measure",
    )
    parser.add_argument("--loads", type=int, default=3, help="page loads to time")
    parser.add_argument("--keep", type=Path, default=None, help="build here and keep the folder (default: a temp dir)")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="medbench-viewer-bench-"))
    try:
        results, out = root / "results", root / "results" / "report"
        started = time.perf_counter()
        mean_mb = build_results(results, args.models, task_set(args.tasks), args.kb_per_attempt)
        print(
            f"built {args.models} x {args.tasks} attempts, {mean_mb:.1f} MB of transcripts per model "
            f"({time.perf_counter() - started:.0f} s)"
        )
        analysis = analyse(results)
        started = time.perf_counter()
        write_viewer(analysis, out)
        viewer_s = time.perf_counter() - started
        write_csvs(analysis, out)
        write_report(analysis, out, [], viewer=True)
        page = out / "transcripts.html"
        indexes = sum(p.stat().st_size for p in (out / "transcripts").glob("m*/index.js")) / 1e6
        data = sum(p.stat().st_size for p in (out / "transcripts").rglob("*.js")) / 1e6
        print(
            f"viewer written in {viewer_s:.1f} s: page {page.stat().st_size / 1000:.0f} kB, "
            f"indexes {indexes:.2f} MB in all, data {data:.0f} MB in all"
        )
        figures = measure(page, args.loads)
        print(json.dumps(figures, indent=2))
        ready_ms = statistics.median(figures["ready_ms"])
        print(
            f"page ready (list of {args.models * args.tasks} attempts shown): median {ready_ms:.0f} ms; "
            f"JS heap {figures['heap_after_load_mb']:.1f} MB; browser PSS {figures['browser_pss_after_load_mb']:.0f} MB "
            f"({figures['browser_pss_blank_mb']:.0f} MB on about:blank)"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
