"""Statistics of verdicts: Wilson interval, pass@k and pass^k."""

import pytest

from medbench.results.stats import pass_at_k, pass_hat_k, wilson_interval


def test_wilson_interval_matches_the_textbook_value_for_285_of_300() -> None:
    low, high = wilson_interval(285, 300)
    assert low == pytest.approx(0.9192, abs=1e-4)
    assert high == pytest.approx(0.9695, abs=1e-4)


def test_wilson_interval_stays_inside_zero_and_one_at_the_extremes() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


def test_wilson_interval_of_nothing_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_rejects_more_correct_than_total() -> None:
    with pytest.raises(ValueError, match="between 0 and total"):
        wilson_interval(5, 4)


def test_pass_at_k_is_one_minus_the_chance_that_k_draws_all_miss() -> None:
    assert pass_at_k(3, 1, 1) == pytest.approx(1 / 3)
    assert pass_at_k(3, 1, 2) == pytest.approx(2 / 3)
    assert pass_at_k(3, 1, 3) == 1.0
    assert pass_at_k(3, 0, 3) == 0.0


def test_pass_hat_k_is_the_chance_that_k_draws_all_succeed() -> None:
    assert pass_hat_k(3, 2, 1) == pytest.approx(2 / 3)
    assert pass_hat_k(3, 2, 2) == pytest.approx(1 / 3)
    assert pass_hat_k(3, 2, 3) == 0.0
    assert pass_hat_k(3, 3, 3) == 1.0


def test_k_larger_than_the_attempts_is_an_error() -> None:
    with pytest.raises(ValueError, match="k=4"):
        pass_at_k(3, 1, 4)
