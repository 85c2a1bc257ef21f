"""The statistics of experiment results (services/agents/statistics.py) against values
computed independently: published textbook examples, closed forms written out here with
math.erfc / math.exp, numerical integration and a seeded Monte Carlo. No database."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import beta

from services.agents import statistics as stats

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score).
NEWCOMBE_WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000),
]


@pytest.mark.parametrize(("converted", "assigned", "lower", "upper"), NEWCOMBE_WILSON)
def test_wilson_interval_matches_newcombes_table(converted, assigned, lower, upper):
    got = stats.wilson_interval(converted, assigned)
    assert got == (pytest.approx(lower, abs=5e-5), pytest.approx(upper, abs=5e-5))


def test_the_95_percent_quantile():
    assert stats.z_for() == pytest.approx(1.959964, abs=1e-6)


def _z_test_by_hand(xa: int, na: int, xb: int, nb: int) -> tuple[float, float]:
    pooled = (xa + xb) / (na + nb)
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    z = (xb / nb - xa / na) / se
    return z, math.erfc(abs(z) / math.sqrt(2))  # two-sided normal tail, without scipy


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(100, 1000, 130, 1000), (45, 500, 30, 480),
                                                     (5, 40, 12, 38), (5000, 100000, 5200, 100000)])
def test_two_proportion_z_test_against_the_formula_written_out(xa, na, xb, nb):
    z, p = stats.two_proportion_z_test(xa, na, xb, nb)
    want_z, want_p = _z_test_by_hand(xa, na, xb, nb)
    assert z == pytest.approx(want_z, rel=1e-12)
    assert p == pytest.approx(want_p, rel=1e-9)


def test_the_textbook_z_test_example():
    """10% of 1000 against 13% of 1000: pooled 11.5%, SE 0.014267, z 2.1027, p 0.0355."""
    z, p = stats.two_proportion_z_test(100, 1000, 130, 1000)
    assert round(z, 4) == 2.1027 and round(p, 4) == 0.0355


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(0, 0, 0, 0), (0, 100, 0, 100), (100, 100, 50, 50),
                                                     (0, 0, 5, 10), (3, 10, 0, 0)])
def test_degenerate_comparisons_are_defined(xa, na, xb, nb):
    """No clients on a side, no conversions at all, everyone converted: no test, z 0, p 1."""
    assert stats.two_proportion_z_test(xa, na, xb, nb) == (0.0, 1.0)
    values = [*stats.difference_interval(xa, na, xb, nb), *stats.wilson_interval(xa, na),
              *stats.wilson_interval(xb, nb), stats.probability_to_beat(xa, na, xb, nb), stats.rate(xa, na)]
    assert all(math.isfinite(v) for v in values)


def test_no_clients_means_no_information():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert stats.rate(0, 0) == 0.0
    assert stats.difference_interval(0, 0, 1, 2) == (0.0, -1.0, 1.0)


def test_difference_interval_against_the_formula_written_out():
    difference, lower, upper = stats.difference_interval(100, 1000, 130, 1000)
    half = 1.959964 * math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert difference == pytest.approx(0.03)
    assert (lower, upper) == (pytest.approx(0.03 - half, abs=1e-6), pytest.approx(0.03 + half, abs=1e-6))


def test_holm_textbook_example():
    """m = 4: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_leaves_a_single_p_value_alone_and_caps_at_one():
    assert stats.holm([0.04]) == [0.04]
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]
    assert stats.holm([]) == []


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(p_values):
    adjusted = stats.holm(p_values)
    assert all(a >= p for a, p in zip(adjusted, p_values, strict=True))
    assert all(a <= 1 for a in adjusted)
    for i in range(len(p_values)):
        for j in range(len(p_values)):
            if p_values[i] < p_values[j]:
                assert adjusted[i] <= adjusted[j]


def test_sample_ratio_mismatch_two_variants():
    """821 against 1179 when 50/50 was meant: chi2 = 2 * 179^2 / 1000 = 64.082 with 1
    degree of freedom, whose tail is erfc(sqrt(x / 2))."""
    result = stats.sample_ratio_test([([821, 1179], [50, 50])])
    assert result.chi_square == pytest.approx(64.082)
    assert result.degrees_of_freedom == 1
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(64.082 / 2)), rel=1e-9)
    assert result.mismatch


def test_sample_ratio_three_variants_two_degrees_of_freedom():
    """Weights 2:1:1 over 400 clients: expected 200, 100, 100. Observed 210, 95, 95 gives
    chi2 = 100/200 + 25/100 + 25/100 = 1.0, and with 2 degrees of freedom the tail is exp(-x/2)."""
    result = stats.sample_ratio_test([([210, 95, 95], [2, 1, 1])])
    assert result.chi_square == pytest.approx(1.0)
    assert result.degrees_of_freedom == 2
    assert result.p_value == pytest.approx(math.exp(-0.5))
    assert not result.mismatch


def test_sample_ratio_sums_independent_weight_versions():
    """Version 1 at 50/50 (510 / 490: chi2 0.4), version 2 at 90/10 (95 / 5: chi2
    25/90 + 25/10 = 2.777...): 2 degrees of freedom in all."""
    result = stats.sample_ratio_test([([510, 490], [50, 50]), ([95, 5], [90, 10])])
    chi_square = 0.4 + 25 / 90 + 2.5
    assert result.chi_square == pytest.approx(chi_square)
    assert result.degrees_of_freedom == 2
    assert result.p_value == pytest.approx(math.exp(-chi_square / 2))
    # Judged against the current weights only (90/10 for all 1100), the same clients would
    # look badly mismatched: that is why each assignment records its weights' version.
    assert stats.sample_ratio_test([([605, 495], [90, 10])]).mismatch


def test_sample_ratio_with_nothing_to_test_and_with_impossible_clients():
    assert stats.sample_ratio_test([]).p_value == 1.0
    assert stats.sample_ratio_test([([0, 0], [1, 1])]).degrees_of_freedom == 0
    impossible = stats.sample_ratio_test([([10, 10, 1], [1, 1, 0])])  # a client on a weight-0 variant
    assert impossible.p_value == 0.0 and impossible.mismatch and impossible.impossible_cells == 1
    assert math.isfinite(impossible.chi_square)


@pytest.mark.parametrize(("xa", "na", "xb", "nb", "want"), [
    (0, 0, 1, 1, 2 / 3),  # P(Beta(2,1) > U(0,1)) = integral of 2x * x = 2/3
    (1, 1, 0, 0, 1 / 3),
    (0, 0, 0, 0, 1 / 2),  # two uniforms
    (0, 1, 1, 1, 5 / 6),  # Beta(2,1) against Beta(1,2): integral of 2x * (2x - x^2) = 4/3 - 1/2
])
def test_probability_to_beat_small_cases_by_hand(xa, na, xb, nb, want):
    assert stats.probability_to_beat(xa, na, xb, nb) == pytest.approx(want, abs=1e-12)


def _by_integration(xa, na, xb, nb) -> float:
    a, b = beta(1 + xa, 1 + na - xa), beta(1 + xb, 1 + nb - xb)
    low, high = min(a.ppf(1e-12), b.ppf(1e-12)), max(a.isf(1e-12), b.isf(1e-12))
    value, _ = integrate.quad(lambda x: b.pdf(x) * a.cdf(x), low, high, limit=200, points=[a.mean(), b.mean()])
    return value


@pytest.mark.parametrize(("xa", "na", "xb", "nb"), [(100, 1000, 130, 1000), (30, 200, 25, 210), (3, 40, 9, 41),
                                                     (5000, 100000, 5200, 100000)])
def test_probability_to_beat_against_numerical_integration(xa, na, xb, nb):
    assert stats.probability_to_beat(xa, na, xb, nb) == pytest.approx(_by_integration(xa, na, xb, nb), abs=1e-6)


def test_probability_to_beat_against_a_seeded_monte_carlo():
    rng = random.Random(12)
    draws = 100_000
    wins = sum(rng.betavariate(1 + 130, 1 + 870) > rng.betavariate(1 + 100, 1 + 900) for _ in range(draws))
    assert stats.probability_to_beat(100, 1000, 130, 1000) == pytest.approx(wins / draws, abs=0.003)
