"""The statistics of experiment results: pure functions of counts, no I/O.

Every function returns finite numbers for every input, degenerate ones included (no
clients, no conversions, every client converted): a rate with nothing to measure is 0 with
the interval [0, 1], a test with nothing to test has z = 0 and p = 1. NaN and infinities
never leave this module (the wire cannot carry them honestly, and JSON cannot at all).

- `wilson_interval`: the Wilson score interval of a proportion (good coverage for small
  counts and rates near 0 or 1, unlike the Wald interval).
- `two_proportion_z_test`: the pooled two-proportion z-test, two-sided.
- `difference_interval`: the unpooled (Wald) interval of a difference of proportions.
- `holm`: Holm's step-down correction of several p-values (family-wise error rate).
- `sample_ratio_test`: chi-square goodness of fit of assigned counts against the weights,
  summed over independent groups (one per version of the weights).
- `probability_to_beat`: P(rate B > rate A) under Beta(1, 1) priors, exactly (a finite sum).

scipy supplies the distributions (normal, chi-square) and log-beta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln
from scipy.stats import chi2, norm

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # adjusted p-values below it are "significant"
SRM_THRESHOLD = 0.001  # a sample ratio test below it flags the experiment


def z_for(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile: 1.959963... for 95%."""
    return float(norm.ppf(0.5 + confidence / 2))


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


def rate(converted: int, assigned: int) -> float:
    return converted / assigned if assigned > 0 else 0.0


def wilson_interval(converted: int, assigned: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(lower, upper); [0, 1] when nothing was assigned."""
    if assigned <= 0:
        return 0.0, 1.0
    z = z_for(confidence)
    p = converted / assigned
    z2n = z * z / assigned
    center = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / assigned + z2n / (4 * assigned))
    lower = 0.0 if converted == 0 else _clamp(center - half)
    upper = 1.0 if converted == assigned else _clamp(center + half)
    return lower, upper


def two_proportion_z_test(converted_a: int, assigned_a: int, converted_b: int,
                          assigned_b: int) -> tuple[float, float]:
    """(z, two-sided p) of B against A with the pooled standard error. (0, 1) when there is
    nothing to test: a side with no clients, or no variation at all (no conversion anywhere,
    or every client converted)."""
    if assigned_a <= 0 or assigned_b <= 0:
        return 0.0, 1.0
    pooled = (converted_a + converted_b) / (assigned_a + assigned_b)
    variance = pooled * (1 - pooled) * (1 / assigned_a + 1 / assigned_b)
    if variance <= 0:
        return 0.0, 1.0
    z = (converted_b / assigned_b - converted_a / assigned_a) / math.sqrt(variance)
    return z, _clamp(float(2 * norm.sf(abs(z))))


def difference_interval(converted_a: int, assigned_a: int, converted_b: int, assigned_b: int,
                        confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(rate B - rate A, lower, upper), the unpooled normal approximation. With a side that
    has no clients the difference is unknown: (0, -1, 1)."""
    if assigned_a <= 0 or assigned_b <= 0:
        return 0.0, -1.0, 1.0
    pa, pb = converted_a / assigned_a, converted_b / assigned_b
    half = z_for(confidence) * math.sqrt(pa * (1 - pa) / assigned_a + pb * (1 - pb) / assigned_b)
    difference = pb - pa
    return difference, _clamp(difference - half, -1.0, 1.0), _clamp(difference + half, -1.0, 1.0)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the i-th smallest of m is multiplied by
    (m - i + 1), made monotone, capped at 1. One p-value is returned unchanged."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class SampleRatioResult:
    chi_square: float
    degrees_of_freedom: int
    p_value: float
    impossible_cells: int  # clients seen where the weights gave a variant no chance

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_THRESHOLD


def sample_ratio_test(groups: Sequence[tuple[Sequence[int], Sequence[int]]]) -> SampleRatioResult:
    """Chi-square goodness of fit of observed counts against weights. `groups`: one
    (observed counts, weights) pair per version of the weights, the counts of the clients
    assigned under that version, variant by variant. The groups are independent
    multinomials, so their statistics and degrees of freedom add up. Variants with weight 0
    are left out of their group; a client on one of them cannot happen under the weights,
    and makes the p-value 0."""
    statistic, freedom, impossible = 0.0, 0, 0
    for observed, weights in groups:
        total = sum(observed)
        weight_sum = sum(weights)
        if total == 0 or weight_sum <= 0:
            continue
        cells = [(o, w) for o, w in zip(observed, weights, strict=True) if w > 0]
        impossible += sum(o for o, w in zip(observed, weights, strict=True) if w <= 0)
        if len(cells) < 2:
            continue
        counted = sum(o for o, _ in cells)
        for o, w in cells:
            expected = counted * w / weight_sum
            statistic += (o - expected) ** 2 / expected if expected > 0 else 0.0
        freedom += len(cells) - 1
    if impossible:
        return SampleRatioResult(statistic, freedom, 0.0, impossible)
    p_value = 1.0 if freedom == 0 else _clamp(float(chi2.sf(statistic, freedom)))
    return SampleRatioResult(statistic, freedom, p_value, 0)


def probability_to_beat(converted_a: int, assigned_a: int, converted_b: int, assigned_b: int) -> float:
    """P(p_B > p_A) with p_X ~ Beta(1 + converted, 1 + assigned - converted), exactly:

        P = sum_{i=0}^{alpha_B - 1} B(alpha_A + i, beta_A + beta_B)
                                   / ((beta_B + i) B(1 + i, beta_B) B(alpha_A, beta_A))

    (the closed form for integer alpha_B). The sum runs over the side with fewer
    conversions (P(B > A) = 1 - P(A > B): ties have probability 0), in logs, vectorised."""
    alpha_a, beta_a = 1 + converted_a, 1 + assigned_a - converted_a
    alpha_b, beta_b = 1 + converted_b, 1 + assigned_b - converted_b
    if alpha_b > alpha_a:
        return _clamp(1.0 - _beats(alpha_b, beta_b, alpha_a, beta_a))
    return _clamp(_beats(alpha_a, beta_a, alpha_b, beta_b))


def _beats(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    i = np.arange(alpha_b, dtype=np.float64)
    terms = (betaln(alpha_a + i, beta_a + beta_b) - np.log(beta_b + i) - betaln(1 + i, beta_b)
             - betaln(alpha_a, beta_a))
    return float(np.exp(terms).sum())
