"""Intervals and tests of gabarito/stats.py against values worked out by hand or published."""

from __future__ import annotations

import math

import pytest

from gabarito import stats as st

Z = 1.959963984540054  # the normal 0.975 quantile


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval from its formula (Wilson 1927), not through scipy."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 4), (4, 4), (1, 3), (3, 10), (27, 65)])
def test_wilson_interval_is_the_formula(k, n):
    low, high = st.proportion_ci(k, n, "wilson")
    assert (low, high) == pytest.approx(wilson_by_hand(k, n), abs=1e-6)


def test_small_n_intervals_are_never_of_zero_width():
    # the bootstrap gave amostra_enem 0/4 the interval 0.00%-0.00%
    assert st.proportion_ci(0, 4) == (0.0, 0.489891)
    for method in ("wilson", "exact", "wilsoncc"):
        for n in range(1, 7):
            for k in range(n + 1):
                low, high = st.proportion_ci(k, n, method)
                assert 0.0 <= low <= k / n <= high <= 1.0 and high - low > 0.1, (method, k, n)


def test_exact_interval_is_clopper_pearson():
    # with 0 or n successes Clopper-Pearson has a closed form: 1 - (alpha/2)^(1/n)
    assert st.proportion_ci(0, 4, "exact") == (0.0, round(1 - 0.025 ** (1 / 4), 6))
    assert st.proportion_ci(4, 4, "exact") == (round(0.025 ** (1 / 4), 6), 1.0)
    assert st.proportion_ci(0, 4, "exact")[1] > st.proportion_ci(0, 4, "wilson")[1]  # exact is the wider
    assert st.proportion_ci(0, 0) == (0.0, 1.0)  # no items: nothing known


def test_accuracy_by_groups_sorted_with_n():
    out = st.accuracy_by(["b", "a", "b"], [True, False, False])
    assert list(out) == ["a", "b"]
    assert out["b"] == {"n": 2, "accuracy": 0.5, **dict(zip(("ci95_low", "ci95_high"), st.proportion_ci(1, 2)))}


@pytest.mark.parametrize("only_base,only_ft,p", [
    (0, 6, 2 * 0.5 ** 6),                       # all six discordant pairs one way
    (1, 5, 2 * (1 + 6) / 2 ** 6),               # P(X <= 1) for Binomial(6, 1/2), doubled
    (3, 3, 1.0), (0, 0, 1.0)])
def test_exact_mcnemar(only_base, only_ft, p):
    base = [True] * only_base + [False] * only_ft + [True, False]
    ft = [False] * only_base + [True] * only_ft + [True, False]
    out = st.mcnemar(base, ft)
    assert (out["only_base_correct"], out["only_finetuned_correct"]) == (only_base, only_ft)
    assert out["p_value"] == pytest.approx(p, abs=1e-6)
    assert out["finetuned_minus_base"] == round((only_ft - only_base) / len(base), 6)
    assert out["ci95_low"] < out["finetuned_minus_base"] < out["ci95_high"] or out["ci95_high"] == 1.0


def test_newcombe_paired_interval_matches_the_published_one():
    # Cavo et al. 2012 (Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables, ch. 8):
    # 59 both, 6 only before, 16 only after, 80 neither; Newcombe's square-and-add interval of
    # before - after is -0.1186 to -0.0046, so after - before (B - A here) is +0.0046 to +0.1186
    low, high = st.newcombe_paired_ci(59, 6, 16, 80)
    assert (low, high) == pytest.approx((0.0046, 0.1186), abs=5e-5)
    assert st.newcombe_paired_ci(59, 16, 6, 80) == (-high, -low)  # A and B swapped: the interval mirrors


def test_newcombe_interval_never_collapses_and_stays_in_range():
    assert st.newcombe_paired_ci(0, 0, 6, 0)[1] == 1.0  # B right on all, A on none: up to +100 pp
    low, high = st.newcombe_paired_ci(2, 0, 0, 2)     # no discordant pair: 0, but not known to be 0
    assert low < 0 < high and high - low > 0.3
    assert st.newcombe_paired_ci(0, 0, 0, 0) == (-1.0, 1.0)
