"""The report's statistics: Wilson intervals against published values, the bootstrap interval of a
mean, and the paired verdict of a variant against its parent."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simeval.eval.stats import (
    NO_DIFFERENCE,
    TOO_FEW,
    Estimate,
    mean_interval,
    paired_difference,
    verdict,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_the_published_values(successes: int, trials: int, low: float, high: float) -> None:
    """Newcombe (1998), 'Two-sided confidence intervals for the single proportion: comparison of
    seven methods', Statistics in Medicine 17:857-872, Table II, method 3 (score interval)."""
    estimate = wilson_interval(successes, trials)
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (low, high)
    assert estimate.value == successes / trials and estimate.n == trials


def test_wilson_interval_of_every_lap_completed_is_not_a_point() -> None:
    five = wilson_interval(5, 5)
    assert five.high == 1.0 and round(five.low, 3) == 0.566, "5 of 5 still leaves room down to 57%"
    assert not wilson_interval(0, 0).has_interval
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(3, 2)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_holds_the_rate_inside_0_1_and_is_symmetric(case: tuple[int, int]) -> None:
    successes, trials = case
    estimate, mirror = wilson_interval(successes, trials), wilson_interval(trials - successes, trials)
    assert 0.0 <= estimate.low <= estimate.value <= estimate.high <= 1.0
    assert math.isclose(estimate.low, 1 - mirror.high, abs_tol=1e-12) and math.isclose(estimate.high, 1 - mirror.low, abs_tol=1e-12)


def test_bootstrap_of_constant_data_has_zero_width_and_one_value_has_none() -> None:
    assert mean_interval([0.05] * 5) == Estimate(0.05, 0.05, 0.05, 5)
    assert mean_interval([3.0]) == Estimate(3.0, None, None, 1)
    assert mean_interval([]).n == 0 and not mean_interval([]).has_interval
    with pytest.raises(ValueError, match="finite numbers"):
        mean_interval([1.0, float("nan")])


def test_bootstrap_is_seeded_and_brackets_a_known_mean() -> None:
    data = [1.0, 2.0, 3.0, 4.0, 5.0]
    first, second = mean_interval(data), mean_interval(data)
    assert first == second, "the same values give the same interval: a rebuilt report is identical"
    assert first.value == 3.0 and 1.0 < first.low < 3.0 < first.high < 5.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=25))
def test_bootstrap_interval_holds_the_mean_within_the_data(values: list[float]) -> None:
    estimate = mean_interval(values)
    assert estimate.n == len(values) and estimate.has_interval
    assert min(values) - 1e-9 <= estimate.low <= estimate.value <= estimate.high <= max(values) + 1e-9


def test_verdict_says_no_difference_when_the_interval_holds_zero() -> None:
    assert verdict(Estimate(0.01, -0.02, 0.03, 5), higher_is_better=True) == NO_DIFFERENCE
    assert verdict(Estimate(0.0, 0.0, 0.0, 5), higher_is_better=False) == NO_DIFFERENCE
    assert verdict(Estimate(0.01, None, None, 1), higher_is_better=True) == TOO_FEW


@pytest.mark.parametrize(
    ("difference", "higher_is_better", "expected"),
    [
        (Estimate(0.5, 0.2, 0.8, 5), True, "better by 0.50 m/s (10%)"),    # faster
        (Estimate(0.5, 0.2, 0.8, 5), False, "worse by 0.50 m/s (10%)"),    # more deviation
        (Estimate(-0.5, -0.8, -0.2, 5), False, "better by 0.50 m/s (10%)"),
        (Estimate(-0.5, -0.8, -0.2, 5), True, "worse by 0.50 m/s (10%)"),
        (Estimate(-0.0018, -0.0036, -0.0001, 5), True, "worse by 0.0018 m/s (0.036%)"),  # real, never "0.00"
        (Estimate(0.0070, 0.0004, 0.0163, 5), False, "worse by 0.0070 m/s (0.14%)"),  # as its cell shows it, not "0.01"
    ],
)
def test_verdict_follows_the_metric_direction(difference: Estimate, higher_is_better: bool, expected: str) -> None:
    assert verdict(difference, higher_is_better=higher_is_better, unit="m/s", digits=2, reference=5.0) == expected


def test_paired_difference_pairs_seed_by_seed() -> None:
    parent = np.array([0.050, 0.062, 0.047, 0.071, 0.055])
    better = paired_difference(parent - 0.004, parent, higher_is_better=False, unit="m", digits=4)
    assert better.difference == Estimate(pytest.approx(-0.004), pytest.approx(-0.004), pytest.approx(-0.004), 5)
    assert better.verdict.startswith("better by 0.0040 m")
    # The same shift hidden in a seed-to-seed spread larger than itself: unpaired it would vanish.
    noisy = paired_difference(parent + np.array([0.01, -0.012, 0.008, -0.009, 0.011]), parent, higher_is_better=False)
    assert noisy.verdict == NO_DIFFERENCE and noisy.difference.contains(0.0)
    lonely = paired_difference([1.0], [2.0], higher_is_better=True)
    assert lonely.verdict == TOO_FEW and lonely.difference.value == -1.0
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0], [1.0], higher_is_better=True)
