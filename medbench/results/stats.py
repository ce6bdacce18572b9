"""Small statistics over verdicts: how sure an accuracy is, and what repeated attempts say.

Pure functions over counts, so summaries, reports and gates all compute them the same way.
"""

from __future__ import annotations

from math import comb, sqrt

Z_95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion (as fractions in [0, 1]).

    Chosen over the normal approximation because it stays inside [0, 1] and is honest at
    accuracies near 0 % or 100 %, where benchmark scores of strong and weak models sit.
    """
    if total <= 0:
        return (0.0, 1.0)
    if not 0 <= correct <= total:
        raise ValueError(f"correct={correct} must lie between 0 and total={total}")
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return (low, high)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k attempts drawn from n (c of them correct) is correct.

    The unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k).
    """
    _check(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Probability that all of k attempts drawn from n (c of them correct) are correct.

    pass^k as in tau-bench: C(c, k) / C(n, k); it measures reliability, not luck.
    """
    _check(n, c, k)
    return comb(c, k) / comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n:
        raise ValueError(f"c={c} correct attempts must lie between 0 and n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must lie between 1 and the number of attempts n={n}")
