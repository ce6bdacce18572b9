"""The transcript viewer's files: one small index per model, one file per attempt, links from report.html."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from helpers.reports import model_lines, write_model
from helpers.transcripts import sample_results
from medbench.reports import ReportError, write_reports
from medbench.reports.cli import main
from medbench.reports.viewer import DATA_DIR, VIEWER_PAGE

DATA_CALL = re.compile(r'^MedbenchViewer\.receive\("([^"]+)",(.*)\);\n$', re.DOTALL)


def read_data(path: Path) -> tuple[str, object]:
    """A data script's key and JSON, checking it is exactly one receive(...) call."""
    match = DATA_CALL.match(path.read_text(encoding="ascii"))
    assert match, f"{path} is not a single MedbenchViewer.receive call"
    return match.group(1), json.loads(match.group(2))


def manifest(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    return json.loads(
        re.search(r'<script id="manifest" type="application/json">(.*?)</script>', text, re.DOTALL).group(1)
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = sample_results(tmp_path_factory.mktemp("results"))
    write_reports(root, root / "report")
    return root / "report"


def test_the_page_inlines_only_a_manifest_of_models_not_their_transcripts(report: Path):
    page = report / VIEWER_PAGE
    info = manifest(page)
    assert [(m["slug"], m["attempts"], m["correct"]) for m in info["models"]] == [
        ("strong-model", 4, 4),
        ("weak-model", 4, 1),
    ]
    assert "valueQuantity" not in page.read_text(encoding="utf-8")
    assert [c["id"] for c in info["categories"]] == ["task2", "task5", "task7"]
    assert info["statuses"] == ["agent_invalid_action", "completed"]


def test_each_model_has_an_index_row_per_attempt_with_verdict_reason_and_figures(report: Path):
    weak = next(m for m in manifest(report / VIEWER_PAGE)["models"] if m["slug"] == "weak-model")
    key, rows = read_data(report / DATA_DIR / weak["dir"] / "index.js")
    assert key == f"{weak['dir']}/index"
    assert [row["t"] for row in rows] == ["task2_1", "task5_1", "task7_1", "task7_2"]
    glucose = rows[2]
    assert (glucose["ok"], glucose["r"]) == (False, "task7: answer [101] != expected [142]")
    assert (glucose["res"], glucose["n"]) == ("[101]", 2)
    assert (glucose["pt"], glucose["ct"], glucose["lat"]) == (3000, 40, 2.0)
    assert glucose["q"] == "What is the most recent glucose value of patient S1234567?"
    assert "Observation?patient=S1234567&code=GLU" in glucose["x"]


def test_each_attempt_has_its_own_transcript_file_with_the_full_fhir_body(report: Path):
    weak = next(m for m in manifest(report / VIEWER_PAGE)["models"] if m["slug"] == "weak-model")
    _, rows = read_data(report / DATA_DIR / weak["dir"] / "index.js")
    files = sorted(p.name for p in (report / DATA_DIR / weak["dir"]).glob("t*.js"))
    assert files == sorted(f"{row['f']}.js" for row in rows)
    key, data = read_data(report / DATA_DIR / weak["dir"] / f"{rows[2]['f']}.js")
    assert key == f"{weak['dir']}/{rows[2]['f']}"
    fhir = next(turn for turn in data["turns"] if turn["kind"] == "fhir")
    assert json.loads(fhir["body"])["entry"][1]["resource"]["valueQuantity"]["value"] == 142


def test_rows_share_a_task_order_across_models_for_the_by_task_view(report: Path):
    orders = []
    for model in manifest(report / VIEWER_PAGE)["models"]:
        _, rows = read_data(report / DATA_DIR / model["dir"] / "index.js")
        orders.append({row["t"]: row["i"] for row in rows})
    assert orders[0] == orders[1]


def test_report_matrix_cells_link_to_that_models_attempts_in_that_category(report: Path):
    page = (report / "report.html").read_text(encoding="utf-8")
    links = [
        parse_qs(fragment.replace("&amp;", "&")) for fragment in re.findall(r'href="transcripts\.html#([^"]*)"', page)
    ]
    assert {"model": ["weak-model"], "category": ["task7"]} in links


def test_failure_rows_link_to_the_incorrect_attempts_and_each_reason_to_its_attempts(report: Path):
    page = (report / "report.html").read_text(encoding="utf-8").replace("&amp;", "&")
    assert 'href="transcripts.html#model=weak-model&verdict=incorrect"' in page
    assert 'href="transcripts.html#model=weak-model&status=agent_invalid_action"' in page
    assert (
        'href="transcripts.html#model=weak-model&status=completed&reason=task7%3A+answer+%5B101%5D+%21%3D+expected+%5B142%5D"'
        in page
    )


def test_a_second_report_replaces_the_viewer_data(report: Path):
    stale = report / DATA_DIR / "m07"
    stale.mkdir()
    write_reports(report.parent, report)
    assert not stale.exists() and (report / DATA_DIR / "m00" / "index.js").is_file()


def test_a_foreign_transcripts_folder_is_never_deleted(tmp_path: Path):
    root = sample_results(tmp_path / "results")
    out = tmp_path / "out"
    (out / DATA_DIR).mkdir(parents=True)
    (out / DATA_DIR / "mine.txt").write_text("keep me")
    with pytest.raises(ReportError, match="was not written by medbench"):
        write_reports(root, out)
    assert (out / DATA_DIR / "mine.txt").read_text() == "keep me"


def test_results_without_transcripts_get_no_viewer_and_no_links(tmp_path: Path):
    write_model(tmp_path, "upstream-model", model_lines([30] * 10))
    written = write_reports(tmp_path, tmp_path / "report")
    assert VIEWER_PAGE not in {p.name for p in written}
    assert "transcripts.html" not in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")


def test_report_command_can_skip_the_viewer(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = sample_results(tmp_path / "results")
    assert main(["report", str(root), "--no-transcripts"]) == 0
    assert not (root / "report" / VIEWER_PAGE).exists()


def test_the_transcripts_section_opens_each_models_attempts(report: Path):
    page = (report / "report.html").read_text(encoding="utf-8")
    assert '<td class="num"><a href="transcripts.html#model=strong-model">4</a></td>' in page
    assert '<td class="num"><a href="transcripts.html#model=weak-model&amp;verdict=incorrect">3</a></td>' in page
