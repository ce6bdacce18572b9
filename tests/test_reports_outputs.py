"""Files the reports write: CSVs, PNG plots, report.md/html, and the command lines."""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers.reports import run_line, write_model, write_published_15
from medbench.reports import write_reports
from medbench.reports.cli import main

PROJECT = Path(__file__).resolve().parents[1]
SARA = "Alfaxad_Sara-1-5-4B-it"
EXPECTED_CSVS = {
    "leaderboard",
    "task_accuracy_matrix",
    "task_intervals",
    "task_rankings",
    "model_rankings_per_task",
    "task_difficulty",
    "task_analysis",
    "failure_breakdown",
    "failure_reasons",
    "pairwise_mcnemar",
    f"{SARA}_comparison",
}
EXPECTED_PLOTS = {
    "leaderboard",
    "task_heatmap",
    "task_difficulty",
    "task_grouped_bars",
    "failure_breakdown",
    f"{SARA}_vs_field",
    "accuracy_vs_parameters",
}


@pytest.fixture(scope="module")
def published_report(tmp_path_factory):
    root = write_published_15(tmp_path_factory.mktemp("published"))
    written = write_reports(root, highlight=[SARA])
    return root, root / "report", written


def test_write_reports_writes_every_csv_plot_and_page_into_results_report(published_report):
    _, out, written = published_report
    assert {p.stem for p in written if p.suffix == ".csv"} == EXPECTED_CSVS
    assert {p.stem for p in written if p.suffix == ".png"} == EXPECTED_PLOTS
    assert {p.name for p in written if p.suffix in (".md", ".html")} == {"report.md", "report.html"}
    assert all(p.is_file() and p.stat().st_size > 0 and p.is_relative_to(out) for p in written)
    assert all(p.parent == out / "plots" for p in written if p.suffix == ".png")


def test_every_plot_is_a_300_dpi_png(published_report):
    _, out, _ = published_report
    for name in EXPECTED_PLOTS:
        with Image.open(out / "plots" / f"{name}.png") as image:
            assert image.format == "PNG"
            assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_leaderboard_csv_keeps_the_documented_columns_and_values(published_report):
    _, out, _ = published_report
    with (out / "leaderboard.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "Rank",
        "Model",
        "Slug",
        "Provider",
        "Parameters",
        "Endpoint",
        "Accuracy (%)",
        "CI Low (%)",
        "CI High (%)",
        "Correct",
        "Total",
        "Completed",
        "Invalid Actions",
        "Limit Reached",
        "Context Limit",
        "Errors",
        "Missing",
        "Attempts",
        "Time (min)",
    ]
    assert [rows[0][k] for k in ("Rank", "Model", "Accuracy (%)", "CI Low (%)", "CI High (%)", "Time (min)")] == [
        "1",
        "Claude Opus 4.5",
        "95.0",
        "91.9",
        "96.9",
        "10.0",
    ]
    assert rows[-1]["Model"] == "Llama 3.1-8B Instruct"


def test_comparison_csv_is_named_after_the_model_folder(published_report):
    _, out, _ = published_report
    with (out / f"{SARA}_comparison.csv").open(newline="") as handle:
        rows = {row["Task"]: row for row in csv.DictReader(handle)}
    assert rows["task1"]["Score (%)"] == "100.0"
    assert rows["task3"]["Rank"] == "14"


def test_report_md_links_the_plots_and_shows_the_leaderboard(published_report):
    _, out, _ = published_report
    text = (out / "report.md").read_text()
    for name in EXPECTED_PLOTS:
        assert f"(plots/{name}.png)" in text
    assert "| 1      | Claude Opus 4.5" in text
    assert "## Sara 1.5 4B vs the field" in text
    assert "## Neighbouring ranks: paired McNemar tests" in text


def test_report_html_is_self_contained_with_embedded_images(published_report):
    _, out, _ = published_report
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(EXPECTED_PLOTS)
    assert 'src="plots/' not in page
    assert "<td>Claude Opus 4.5</td>" in page


def test_report_html_aligns_text_left_and_numbers_right(published_report):
    _, out, _ = published_report
    page = (out / "report.html").read_text()
    leaderboard = page[page.index('<table class="dataframe">') : page.index("</table>")]
    headers = re.findall(r"<th( class=\"num\")?>([^<]+)</th>", leaderboard)
    aligned = {name: ("right" if num else "left") for num, name in headers}
    assert aligned["Model"] == "left" and aligned["Parameters"] == "left"
    assert aligned["Accuracy (%)"] == aligned["Correct"] == aligned["Rank"] == "right"
    assert "th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }" in page


def test_report_shows_pass_k_and_cost_sections_when_recorded(tmp_path):
    (tmp_path / "models.toml").write_text("[models.m]\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\n")
    lines = [
        run_line(f"task{c}_1", c != attempt, attempt=attempt, prompt_tokens=100, completion_tokens=10, latency_s=1.5)
        for attempt in (1, 2)
        for c in (1, 2)
    ]
    write_model(tmp_path, "m", lines)
    written = write_reports(tmp_path, out_dir=tmp_path / "out")
    names = {p.name for p in written}
    assert {"pass_k.csv", "efficiency.csv"} <= names
    assert "accuracy_vs_parameters.png" not in names
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Repeated attempts: pass@k and pass^k" in text
    assert "## Tokens, latency and cost" in text
    assert "## Neighbouring ranks" not in text


def test_cli_csv_writes_tables_to_the_chosen_folder(published_report, tmp_path, capsys):
    root, _, _ = published_report
    assert main(["csv", str(root), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "task_rankings.csv").is_file()
    assert str(tmp_path / "leaderboard.csv") in capsys.readouterr().out


def test_the_seeds_analyze_benchmarks_prints_the_analysis_and_writes_task_analysis_csv(published_report, tmp_path):
    root, _, _ = published_report
    script = PROJECT / "scripts" / "analyze_benchmarks.py"
    done = subprocess.run(
        [sys.executable, str(script), str(root), "--out", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Leaderboard (Wilson 95% interval)" in done.stdout
    assert f"task analysis written to {tmp_path / 'task_analysis.csv'}" in done.stdout
    with (tmp_path / "task_analysis.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {f"task{n}" for n in range(1, 11)} <= {row["Task"] for row in rows}


def test_the_seeds_visualize_benchmarks_draws_the_plots(published_report, tmp_path):
    root, _, _ = published_report
    script = PROJECT / "scripts" / "visualize_benchmarks.py"
    done = subprocess.run(
        [sys.executable, str(script), str(root), "--out", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plots" / "leaderboard.png").is_file()


def test_benchmark_models_help_keeps_each_example_command_whole():
    done = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "benchmark_models.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    assert "--base-url http://localhost:8000/v1 \\\n" in done.stdout
    assert not re.search(r"/v1 {2,}--extra-header", done.stdout), "a value runs into the next option"


def test_cli_analyze_prints_the_leaderboard_and_the_hardest_task(published_report, capsys):
    root, _, _ = published_report
    assert main(["analyze", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Leaderboard (Wilson 95% interval)" in out
    assert "Claude Opus 4.5         Frontier      95.0" in out
    assert "1       task7   Latest glucose" in out


def test_cli_compare_runs_the_paired_mcnemar_test(published_report, capsys):
    root, _, _ = published_report
    assert main(["analyze", str(root), "--compare", "Claude Opus 4.5", "Gemini 3 Flash Preview"]) == 0
    out = capsys.readouterr().out
    assert "Claude Opus 4.5 alone solved 15 task(s), Gemini 3 Flash Preview alone 0" in out
    assert "significant at the 5% level" in out and "not significant" not in out


def test_cli_errors_name_the_fix_and_exit_2(published_report, tmp_path, capsys):
    root, _, _ = published_report
    assert main(["analyze", str(root), "--compare", "Claude Opus 4.5", "GPT-7"]) == 2
    assert "no model 'GPT-7'" in capsys.readouterr().err
    write_model(tmp_path, "a", [run_line("task1_1", True)], summary={"modes": {"grader": "official"}})
    write_model(tmp_path, "b", [run_line("task1_1", True)], summary={"modes": {"grader": "corrected"}})
    assert main(["report", str(tmp_path)]) == 2
    assert "pass --allow-mixed" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--allow-mixed"]) == 0


def test_cli_plots_select_models_for_grouped_bars(tmp_path):
    for slug in ("one", "two", "three"):
        write_model(tmp_path / "results", slug, [run_line("task1_1", slug != "two"), run_line("task2_1", True)])
    assert main(["plots", str(tmp_path / "results"), "--out", str(tmp_path), "--select", "two", "--select", "one"]) == 0
    assert (tmp_path / "plots" / "task_grouped_bars.png").stat().st_size > 0
    assert main(["plots", str(tmp_path / "results"), "--select", "four"]) == 2


def test_a_single_model_gets_every_plot_except_a_comparison_with_no_field(tmp_path):
    write_model(tmp_path, "solo", [run_line("task1_1", True), run_line("task2_1", False, "limit_reached")])
    written = write_reports(tmp_path, highlight=["solo"])
    assert {p.name for p in written if p.suffix == ".png"} == {
        "leaderboard.png",
        "task_heatmap.png",
        "task_difficulty.png",
        "task_grouped_bars.png",
        "failure_breakdown.png",
    }
    assert "solo_comparison.csv" in {p.name for p in written}


@pytest.mark.parametrize("script", ["generate_csvs.py", "visualize_benchmarks.py", "analyze_benchmarks.py"])
def test_scripts_are_thin_wrappers_with_help(script):
    done = subprocess.run([sys.executable, str(PROJECT / "scripts" / script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert f"scripts/{script}" in done.stdout and "--allow-mixed" in done.stdout


def test_python_dash_m_runs_the_analysis(published_report):
    root, _, _ = published_report
    done = subprocess.run(
        [sys.executable, "-m", "medbench.reports", "analyze", str(root), "--compare", "GPT-4.1", "GPT-4o"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "p = 1: the difference is not significant" in done.stdout


def test_run_name_folders_get_flat_file_names_for_their_comparison(tmp_path):
    write_model(tmp_path / "gpt-4o", "t0", [run_line("task1_1", True), run_line("task2_1", True)])
    write_model(tmp_path / "gpt-4o", "t1", [run_line("task1_1", False), run_line("task2_1", True)])
    written = write_reports(tmp_path, highlight=["gpt-4o/t1"])
    names = {p.relative_to(tmp_path / "report").as_posix() for p in written}
    assert {"gpt-4o__t1_comparison.csv", "plots/gpt-4o__t1_vs_field.png"} <= names
