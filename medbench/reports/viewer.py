"""The transcript viewer: `transcripts.html` beside report.html, with its data in `transcripts/`.

The page must open from disk (file://), where browsers refuse fetch(), and stay light at 15
models x 300 tasks with full FHIR bundles (about 46 MB of transcripts per model). So nothing is
inlined but a small manifest: each model gets `transcripts/mNN/index.js` (one short row per
attempt, loaded when the model is shown) and one `transcripts/mNN/tNNNN.js` per attempt (the
whole conversation, loaded when its transcript is opened). Each data file is a script that
hands its JSON to `MedbenchViewer.receive(key, data)`. No front-end library is used.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from medbench.package_data import data_file
from medbench.reports.analysis import Analysis
from medbench.reports.load import ReportError, category_sort_key
from medbench.reports.transcripts import (
    attempt_sort_key,
    has_transcripts,
    iter_graded_transcripts,
    lay_out_turns,
    prompt_parts,
    read_run_lines,
)
from medbench.results.records import RecordKey

VIEWER_PAGE = "transcripts.html"
DATA_DIR = "transcripts"
MARKER = ".medbench-viewer"
PAGE_SIZE = 100
SEARCH_TEXT_PER_TURN = 1000  # characters of each agent answer that the text search sees
_ASSETS = data_file("viewer")


def viewer_link(slug: str | None = None, **filters: str) -> str:
    """`transcripts.html#model=<slug>&category=task7`: the viewer opened on a filtered list."""
    params = ([("model", slug)] if slug else []) + [(key, value) for key, value in filters.items() if value is not None]
    return VIEWER_PAGE + ("#" + urlencode(params) if params else "")


def has_any_transcripts(analysis: Analysis) -> bool:
    return any(has_transcripts(analysis.results_dir / entry.results.slug) for entry in analysis.entries)


def write_viewer(analysis: Analysis, out_dir: Path) -> list[Path]:
    """Write transcripts.html and the transcripts/ folder (replacing an earlier one) into out_dir."""
    out_dir = Path(out_dir)
    data_dir = out_dir / DATA_DIR
    _clear(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text(
        "written by medbench.reports; the whole folder is replaced on each report\n", encoding="utf-8"
    )
    runs_per_model = [read_run_lines(analysis.results_dir / entry.results.slug) for entry in analysis.entries]
    order = {key: n for n, key in enumerate(sorted({k for runs in runs_per_model for k in runs}, key=attempt_sort_key))}
    models, statuses = [], set()
    for number, (entry, runs) in enumerate(zip(analysis.entries, runs_per_model)):
        folder = analysis.results_dir / entry.results.slug
        directory = f"m{number:02d}"
        rows = _write_model(folder, runs, data_dir / directory, directory, order)
        statuses.update(run["status"] for run in runs.values())
        models.append(
            {
                "slug": entry.results.slug,
                "name": entry.name,
                "dir": directory,
                "attempts": len(rows),
                "correct": sum(bool(row["ok"]) for row in rows),
                "transcripts": any(row["f"] for row in rows),
            }
        )
    categories = sorted(
        {str(run.get("category") or "") for runs in runs_per_model for run in runs.values()} - {""},
        key=category_sort_key,
    )
    manifest = {
        "about": f"{len(models)} model(s) from {analysis.results_dir}. Filters and search apply to the list; "
        "click an attempt to read its transcript.",
        "dataDir": DATA_DIR,
        "pageSize": PAGE_SIZE,
        "models": models,
        "categories": [{"id": c, "label": analysis.catalog.task_label(c)} for c in categories],
        "statuses": sorted(statuses),
    }
    page = out_dir / VIEWER_PAGE
    page.write_text(_render_page(manifest), encoding="utf-8")
    return [page, data_dir]


def _clear(data_dir: Path) -> None:
    if not data_dir.exists():
        return
    if not (data_dir / MARKER).is_file():
        raise ReportError(f"{data_dir} exists and was not written by medbench; move it away or choose another --out")
    shutil.rmtree(data_dir)


def _write_model(
    folder: Path, runs: dict[RecordKey, dict[str, Any]], target: Path, directory: str, order: dict[RecordKey, int]
) -> list[dict[str, Any]]:
    """One file per recorded transcript (streamed), then the model's index; returns the index rows."""
    target.mkdir(parents=True)
    files = {key: f"t{n:04d}" for n, key in enumerate(runs)}
    found: dict[RecordKey, tuple[str, str]] = {}
    for key, transcript in iter_graded_transcripts(folder, runs):
        history = list(transcript.get("history") or [])
        turns = lay_out_turns(history, transcript.get("calls"))
        _write_data(target / f"{files[key]}.js", f"{directory}/{files[key]}", {"turns": turns})
        question = prompt_parts(str(history[0].get("content", "")))[1] if history else ""
        answers = "\n".join(t["text"][:SEARCH_TEXT_PER_TURN] for t in turns if t["kind"] == "agent")
        found[key] = (question, answers)
    rows = [
        _index_row(key, run, files[key] if key in found else None, found.get(key, ("", "")), order[key])
        for key, run in runs.items()
    ]
    _write_data(target / "index.js", f"{directory}/index", rows)
    return rows


def _index_row(
    key: RecordKey, run: dict[str, Any], file: str | None, texts: tuple[str, str], position: int
) -> dict[str, Any]:
    """The short record the list, the filters and the search work on (keys kept short: 4,500 rows)."""
    return {
        "i": position,
        "t": key[0],
        "a": key[1],
        "c": str(run.get("category") or ""),
        "s": str(run.get("status")),
        "ok": bool(run.get("correct")),
        "r": run.get("reason"),
        "e": run.get("error"),
        "res": _answer(run),
        "n": run.get("num_turns"),
        "pt": run.get("prompt_tokens"),
        "ct": run.get("completion_tokens"),
        "lat": run.get("latency_s"),
        "f": file,
        "q": texts[0],
        "x": texts[1],
    }


def _answer(run: dict[str, Any]) -> str | None:
    if run.get("result_raw") is not None:
        return str(run["result_raw"])
    result = run.get("result")
    return None if result is None else result if isinstance(result, str) else json.dumps(result)


def _write_data(path: Path, key: str, data: Any) -> None:
    payload = json.dumps(data, separators=(",", ":"))  # ASCII only: no charset questions under file://
    path.write_text(f"MedbenchViewer.receive({json.dumps(key)},{payload});\n", encoding="ascii")


def _render_page(manifest: dict[str, Any]) -> str:
    page = (_ASSETS / "page.html").read_text(encoding="utf-8")
    inline_json = json.dumps(manifest).replace("<", "\\u003c")  # nothing in it can close or comment the script
    return (
        page.replace("/*CSS*/", (_ASSETS / "viewer.css").read_text(encoding="utf-8"))
        .replace("/*JS*/", (_ASSETS / "viewer.js").read_text(encoding="utf-8"))
        .replace("/*MANIFEST*/", inline_json)
    )
