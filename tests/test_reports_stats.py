"""Statistics used by the reports, checked against textbook and hand-computed values."""

import pytest

from medbench.reports.comparisons import competition_ranks, mcnemar_exact
from medbench.reports.metadata import parse_parameters
from medbench.results.stats import pass_at_k, pass_hat_k, wilson_interval


def test_wilson_interval_for_285_of_300_is_91_9_to_96_9_percent():
    # the roots of (0.95 - p)^2 = z^2 p (1 - p) / 300 with z = 1.96
    low, high = wilson_interval(285, 300)
    assert low == pytest.approx(0.919153, abs=1e-6)
    assert high == pytest.approx(0.969468, abs=1e-6)


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (5, 10, (0.236593, 0.763407)),
        (0, 10, (0.0, 0.277533)),
        (10, 10, (0.722467, 1.0)),
    ],
)
def test_wilson_interval_matches_textbook_values_including_the_edges(successes, n, expected):
    low, high = wilson_interval(successes, n)
    assert (low, high) == pytest.approx(expected, abs=1e-5)


def test_mcnemar_exact_9_against_1_discordant_is_0_0215():
    # two-sided: 2 * (C(10,0) + C(10,1)) / 2**10 = 22 / 1024
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert mcnemar_exact(1, 9) == mcnemar_exact(9, 1)


def test_mcnemar_exact_without_discordant_pairs_or_with_balanced_ones_is_1():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0


def test_mcnemar_exact_six_discordant_all_one_way_is_1_in_32():
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)


def test_pass_at_k_and_pass_hat_k_for_one_correct_in_three():
    assert pass_at_k(3, 1, 1) == pytest.approx(1 / 3)
    assert pass_at_k(3, 1, 2) == pytest.approx(2 / 3)
    assert pass_at_k(3, 1, 3) == 1.0
    assert pass_hat_k(3, 1, 1) == pytest.approx(1 / 3)
    assert pass_hat_k(3, 1, 2) == 0.0


def test_pass_hat_k_for_two_correct_in_three_is_one_third_at_k2():
    assert pass_hat_k(3, 2, 2) == pytest.approx(1 / 3)


def test_competition_ranks_share_ties_and_skip_the_next_rank():
    assert competition_ranks([0.9, 0.95, 0.9, 0.8]) == [2, 1, 2, 4]


@pytest.mark.parametrize(
    ("label", "billions"),
    [
        ("4B", 4.0),
        ("109B (MoE)", 109.0),
        ("1.5T", 1500.0),
        ("350M", 0.35),
        ("Frontier", None),
        ("", None),
        (None, None),
    ],
)
def test_parameter_labels_give_a_count_in_billions_only_when_they_state_one(label, billions):
    assert parse_parameters(label) == (pytest.approx(billions) if billions else None)
