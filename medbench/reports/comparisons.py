"""Paired comparison and tie-aware ranking for cross-model tables.

300 tasks is a small sample: two models 2 points apart are often indistinguishable, so
pairwise claims get an exact paired test. Wilson intervals and pass@k / pass^k come from
medbench.results.stats, so summaries and reports compute them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    Under the null each discordant task is a fair coin, so the p-value is the two-sided
    binomial tail of min(b, c) out of b + c at p = 1/2.
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """Rank 1 = highest; ties share the best rank and the next rank skips (1, 1, 3)."""
    return [1 + sum(other > score for other in scores) for score in scores]
