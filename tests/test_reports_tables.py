"""Cross-model tables on hand-made result folders, including the published 15-model table."""

import pytest

from helpers.reports import model_lines, run_line, write_model, write_published_15
from medbench.reports import analyse
from medbench.reports.load import load_results, task_category
from medbench.reports.metadata import load_catalog
from medbench.reports.tables import (
    UnknownModelError,
    build_entries,
    failure_reasons,
    find_entry,
    paired_comparison,
    pass_k_table,
)

PUBLISHED = [
    ("Claude Opus 4.5", 95.0),
    ("Gemini 3 Flash Preview", 90.0),
    ("Grok 4.1 Fast", 87.7),
    ("Claude Sonnet 4.5", 86.0),
    ("GPT-4.1", 77.3),
    ("GPT-4o", 77.0),
    ("GPT-5.1", 76.0),
    ("Qwen3-14B", 74.0),
    ("Gemini 2.5 Flash", 72.8),
    ("Sara 1.5 4B", 66.7),
    ("Mistral Small 3.2", 51.7),
    ("Llama 4 Scout", 41.3),
    ("Qwen3-8B", 40.0),
    ("Llama 4 Maverick", 37.3),
    ("Llama 3.1-8B Instruct", 14.0),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = write_published_15(tmp_path_factory.mktemp("published"))
    return analyse(root, highlight=["Alfaxad/Sara-1.5-4B-it"])


def test_published_leaderboard_reproduces_the_15_accuracies_in_order(published):
    board = published.tables["leaderboard"]
    assert list(zip(board["Model"], board["Accuracy (%)"])) == PUBLISHED
    assert list(board["Rank"]) == list(range(1, 16))


def test_published_leaderboard_carries_wilson_interval_and_parameters(published):
    opus = published.tables["leaderboard"].iloc[0]
    assert (opus["Correct"], opus["Total"]) == (285, 300)
    assert (opus["CI Low (%)"], opus["CI High (%)"]) == (91.9, 96.9)
    scout = published.tables["leaderboard"].set_index("Model").loc["Llama 4 Scout"]
    assert scout["Parameters"] == "109B (MoE)"
    assert scout["Provider"] == "Meta"


def test_published_leaderboard_counts_format_failures_and_missing_tasks(published):
    board = published.tables["leaderboard"].set_index("Model")
    assert board.loc["Llama 4 Maverick", "Invalid Actions"] == 116
    assert board.loc["Llama 3.1-8B Instruct", "Limit Reached"] == 87
    assert board.loc["Gemini 3 Flash Preview", "Errors"] == 6
    assert board.loc["Gemini 2.5 Flash", ["Total", "Missing"]].tolist() == [298, 2]
    assert board["Missing"].drop("Gemini 2.5 Flash").eq(0).all()


def test_task_accuracy_matrix_has_one_row_per_task_in_natural_order_plus_overall(published):
    matrix = published.tables["task_accuracy_matrix"]
    assert list(matrix["Task"]) == [f"task{i}" for i in range(1, 11)] + ["Overall"]
    by_task = matrix.set_index("Task")
    assert by_task.loc["task7", "Claude Opus 4.5"] == 56.7
    assert by_task.loc["task9", "Sara 1.5 4B"] == 96.7
    assert by_task.loc["Overall", "Llama 3.1-8B Instruct"] == 14.0
    assert by_task.loc["task3", "Description"] == "Record blood pressure"


def test_task_rankings_share_rank_1_among_the_eight_perfect_models_on_task1(published):
    task1 = published.tables["task_rankings"].query("Task == 'task1'")
    assert (task1["Rank"] == 1).sum() == 8
    assert task1[task1["Model"] == "GPT-4o"]["Rank"].item() == 9
    assert task1[task1["Model"] == "GPT-4.1"]["Rank"].item() == 10
    assert set(task1[task1["Rank"] == 14]["Model"]) == {"Llama 4 Maverick", "Llama 3.1-8B Instruct"}


def test_model_rankings_per_task_use_the_same_shared_ranks(published):
    ranks = published.tables["model_rankings_per_task"].set_index("Model")
    assert ranks.loc["Sara 1.5 4B", "task1"] == 1
    assert ranks.loc["Sara 1.5 4B", "task9"] == 1
    assert ranks.loc["Sara 1.5 4B", "task3"] == 14
    assert ranks.loc["Gemini 2.5 Flash", "task3"] == 14


def test_task_difficulty_ranks_task7_hardest_and_task5_easiest(published):
    difficulty = published.tables["task_difficulty"]
    assert difficulty.iloc[0][["Rank", "Task", "Hardest For", "Easiest For"]].tolist() == [
        1,
        "task7",
        "Llama 4 Maverick",
        "Grok 4.1 Fast",
    ]
    assert difficulty.iloc[-1]["Task"] == "task5"
    assert difficulty.set_index("Task").loc["task1", "Models at 100%"] == 8


def test_highlighted_model_is_compared_with_the_mean_of_the_other_models(published):
    comparison = published.tables["Alfaxad_Sara-1-5-4B-it_comparison"].set_index("Task")
    matrix = published.tables["task_accuracy_matrix"].set_index("Task")
    others = matrix.loc["task9"].drop(["Description", "Sara 1.5 4B"]).astype(float)
    assert comparison.loc["task9", "Score (%)"] == 96.7
    assert comparison.loc["task9", "Field Average (%)"] == pytest.approx(others.mean(), abs=0.06)
    assert comparison.loc["task9", ["Rank", "Of", "Best Model"]].tolist() == [1, 15, "Sara 1.5 4B"]


def test_task_analysis_combines_difficulty_and_every_model_score(published):
    analysis = published.tables["task_analysis"].set_index("Task")
    assert analysis.loc["task7", "Difficulty Rank"] == 1
    assert analysis.loc["task7", "Grok 4.1 Fast"] == 63.3
    assert len([c for c in analysis.columns if c in dict(PUBLISHED)]) == 15


def test_task_intervals_give_each_model_and_task_a_wilson_interval(published):
    rows = published.tables["task_intervals"]
    assert len(rows) == 150
    sara_task3 = rows.query("Model == 'Sara 1.5 4B' and Task == 'task3'").iloc[0]
    assert sara_task3[["Correct", "Total", "CI Low (%)", "CI High (%)"]].tolist() == [0, 30, 0.0, 11.4]


def test_failure_breakdown_splits_wrong_answers_from_failure_statuses(published):
    breakdown = published.tables["failure_breakdown"].set_index("Model")
    maverick = breakdown.loc["Llama 4 Maverick"]
    assert maverick[["Correct", "Completed Incorrect", "Invalid Actions", "Errors"]].tolist() == [112, 71, 116, 1]
    assert maverick["Invalid Action Rate (%)"] == 38.7


def test_no_pass_k_or_efficiency_tables_without_repeats_or_token_counts(published):
    assert "pass_k" not in published.tables
    assert "efficiency" not in published.tables


def test_ties_on_overall_accuracy_share_a_rank_and_order_by_name(tmp_path):
    write_model(tmp_path, "zeta", [run_line("task1_1", True), run_line("task1_2", False)])
    write_model(tmp_path, "alpha", [run_line("task1_1", False), run_line("task1_2", True)])
    write_model(tmp_path, "best", [run_line("task1_1", True), run_line("task1_2", True)])
    write_model(tmp_path, "worst", [run_line("task1_1", False), run_line("task1_2", False)])
    board = analyse(tmp_path).tables["leaderboard"]
    assert list(zip(board["Rank"], board["Model"])) == [(1, "best"), (2, "alpha"), (2, "zeta"), (4, "worst")]


def test_paired_comparison_counts_discordant_tasks_and_gives_the_exact_p_value(tmp_path):
    ids = [f"task1_{i}" for i in range(1, 21)]
    # A and B both solve 1-5; A alone solves 6-14 (9 tasks); B alone solves 15; 16-20 neither.
    write_model(tmp_path, "a", [run_line(t, i < 14) for i, t in enumerate(ids)])
    write_model(tmp_path, "b", [run_line(t, i < 5 or i == 14) for i, t in enumerate(ids)])
    entries = build_entries(load_results(tmp_path), load_catalog())
    row = paired_comparison(find_entry(entries, "a"), find_entry(entries, "b"))
    assert [row[k] for k in ("Tasks", "Both Correct", "A Only", "B Only", "Both Wrong")] == [20, 5, 9, 1, 5]
    assert row["p-value"] == pytest.approx(22 / 1024)
    assert row["Difference (pp)"] == 40.0


def test_paired_comparison_uses_only_tasks_both_models_attempted(tmp_path):
    write_model(tmp_path, "a", [run_line("task1_1", True), run_line("task1_2", True)])
    write_model(tmp_path, "b", [run_line("task1_1", False)])
    entries = build_entries(load_results(tmp_path), load_catalog())
    row = paired_comparison(find_entry(entries, "a"), find_entry(entries, "b"))
    assert (row["Tasks"], row["A Only"], row["B Only"]) == (1, 1, 0)


def test_repeated_attempts_give_pass_at_k_and_pass_hat_k(tmp_path):
    lines = []
    for attempt, outcomes in enumerate([(True, True), (True, False), (False, False)], start=1):
        lines += [run_line("task1_1", outcomes[0], attempt=attempt), run_line("task2_1", outcomes[1], attempt=attempt)]
    write_model(tmp_path, "repeater", lines)
    analysis = analyse(tmp_path)
    table = analysis.tables["pass_k"].set_index("k")
    # task1_1: 2 of 3 correct, task2_1: 1 of 3 correct
    assert table.loc[1, "pass@k (%)"] == 50.0
    assert table.loc[2, "pass@k (%)"] == round(100 * (1 + 2 / 3) / 2, 1)
    assert table.loc[2, "pass^k (%)"] == round(100 * (1 / 3 + 0) / 2, 1)
    assert table.loc[3, ["pass@k (%)", "pass^k (%)"]].tolist() == [100.0, 0.0]
    assert analysis.tables["leaderboard"].iloc[0][["Correct", "Total", "Attempts"]].tolist() == [3, 6, 3]


def test_pass_k_table_is_empty_for_single_attempts(tmp_path):
    write_model(tmp_path, "once", [run_line("task1_1", True)])
    assert pass_k_table(build_entries(load_results(tmp_path), load_catalog())).empty


def test_resumed_run_keeps_the_last_line_for_a_repeated_task(tmp_path):
    write_model(tmp_path, "resumed", [run_line("task1_1", False, "error"), run_line("task1_1", True)])
    board = analyse(tmp_path).tables["leaderboard"]
    assert board.iloc[0][["Correct", "Total", "Errors"]].tolist() == [1, 1, 0]


def test_efficiency_reports_tokens_latency_and_cost_per_correct_task(tmp_path):
    (tmp_path / "models.toml").write_text(
        '[models.priced]\ndisplay_name = "Priced"\ninput_usd_per_mtok = 2.0\noutput_usd_per_mtok = 10.0\n'
    )
    write_model(
        tmp_path,
        "priced",
        [
            run_line("task1_1", True, prompt_tokens=1000, completion_tokens=100, latency_s=2.0),
            run_line("task1_2", True, prompt_tokens=3000, completion_tokens=300, latency_s=4.0),
            run_line("task1_3", False, prompt_tokens=6000, completion_tokens=600, latency_s=6.0),
        ],
    )
    write_model(tmp_path, "unpriced", [run_line("task1_1", True, prompt_tokens=10, completion_tokens=5)])
    table = analyse(tmp_path).tables["efficiency"].set_index("Model")
    priced = table.loc["Priced"]
    assert priced[["Prompt Tokens", "Completion Tokens", "Tokens per Correct"]].tolist() == [10000, 1000, 5500]
    assert priced["Latency per Correct (s)"] == 6.0
    # (10000 * 2 + 1000 * 10) / 1e6 = 0.03 USD over 2 correct tasks
    assert priced["Cost (USD)"] == pytest.approx(0.03)
    assert priced["Cost per Correct (USD)"] == pytest.approx(0.015)
    assert table.loc["unpriced"][["Cost (USD)"]].isna().all()


def test_failure_reasons_count_grader_reasons_and_statuses_of_incorrect_attempts(tmp_path):
    write_model(
        tmp_path,
        "m",
        [
            run_line("task3_1", False, reason="wrong POST count"),
            run_line("task3_2", False, reason="wrong POST count"),
            run_line("task3_3", False, "agent_invalid_action"),
            run_line("task3_4", True),
        ],
    )
    reasons = failure_reasons(build_entries(load_results(tmp_path), load_catalog()))
    assert reasons[["Status", "Reason", "Count"]].values.tolist() == [
        ["completed", "wrong POST count", 2],
        ["agent_invalid_action", "", 1],
    ]


def test_model_names_resolve_by_slug_recorded_name_or_display_name(published):
    assert find_entry(published.entries, "Alfaxad_Sara-1-5-4B-it").name == "Sara 1.5 4B"
    assert find_entry(published.entries, "sara 1.5 4b").name == "Sara 1.5 4B"
    with pytest.raises(UnknownModelError, match="known model folders: .*qwen_qwen3-8b"):
        find_entry(published.entries, "gpt-6")


def test_models_without_metadata_are_shown_by_folder_name(tmp_path):
    write_model(tmp_path, "my-local-model", model_lines([1, 2], totals=[2, 2]))
    board = analyse(tmp_path).tables["leaderboard"]
    assert board.iloc[0][["Model", "Provider", "Parameters", "Accuracy (%)"]].tolist() == [
        "my-local-model",
        "",
        "",
        75.0,
    ]


def test_task_category_is_everything_before_the_last_underscore():
    assert [task_category(t) for t in ("task10_7", "task1_30", "custom_set_a_3", "plain")] == [
        "task10",
        "task1",
        "custom_set_a",
        "plain",
    ]
