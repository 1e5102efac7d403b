"""The statistics of a sweep report: how sure a number over a few seeds is, and whether a variant
differs from its parent.

- A completion rate (k laps of n) gets a Wilson score interval: unlike the textbook
  ``p ± z·sqrt(p(1-p)/n)`` it stays inside [0, 1] and does not collapse to a point at 0/n or n/n,
  which is where a sweep's rates mostly are.
- A mean (lap time, speed, deviation, inference time) gets a bootstrap interval
  (``scipy.stats.bootstrap``, BCa, a fixed seed so a report rebuilt from the same runs shows the
  same numbers): no normality assumption about laps.
- A variant is compared with its parent seed by seed (the same circuit, scenario and start), so the
  run-to-run spread that both share cancels: the mean of the per-seed differences and its bootstrap
  interval, and a verdict in words.

Nothing here knows about laps: values in, ``Estimate`` out.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
"""Every interval of the report is a 95% interval."""
BOOTSTRAP_RESAMPLES = 9_999
BOOTSTRAP_SEED = 0
"""The bootstrap's resampling is seeded: the same runs give the same report, byte for byte."""
MIN_SEEDS = 5
"""Below this many seeds the report warns that it is too small to tell: with n values a bootstrap
has only C(2n-1, n) distinct resamples (35 at n=4, 126 at n=5), so its 95% interval is coarse and
too narrow, and a Wilson interval of n/n laps still reaches down to 57% at n=5 (to 51% at n=4)."""
NO_DIFFERENCE = "no detectable difference"
TOO_FEW = "too few seeds to tell"


@dataclass(frozen=True)
class Estimate:
    """A value over n observations and its 95% interval; ``low``/``high`` are None where no interval
    can be computed (fewer than two observations)."""

    value: float
    low: float | None
    high: float | None
    n: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies in the interval (False without one)."""
        return self.has_interval and self.low <= x <= self.high  # type: ignore[operator]


def _z(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence`` interval (1.96 for 95%)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> Estimate:
    """The rate ``successes / trials`` with its Wilson score interval (no interval for 0 trials)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return Estimate(math.nan, None, None, 0)
    p, z = successes / trials, _z(confidence)
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    # At 0/n and n/n the exact bound is 0 or 1; the formula lands there up to rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Estimate(p, low, high, trials)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The mean of ``values`` (finite numbers) and its bootstrap interval.

    BCa (bias-corrected and accelerated) where it is defined; where it is not (the resamples of a
    few distinct values can make its correction infinite) the percentile interval. Equal values
    have a zero-width interval; a single value has none."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or not np.all(np.isfinite(data)):
        raise ValueError(f"need a list of finite numbers, got {values!r}")
    if data.size == 0:
        return Estimate(math.nan, None, None, 0)
    mean = float(data.mean())
    if data.size == 1:
        return Estimate(mean, None, None, 1)
    if np.all(data == data[0]):  # the value itself (a sum of n equal floats / n can miss it by an ulp)
        return Estimate(float(data[0]), float(data[0]), float(data[0]), int(data.size))
    low, high = _bootstrap(data, confidence, "BCa")
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = _bootstrap(data, confidence, "percentile")
    # The mean is inside its own interval (rounding of a tight interval could put it a hair outside).
    return Estimate(mean, min(low, mean), max(high, mean), int(data.size))


def _bootstrap(data: np.ndarray, confidence: float, method: str) -> tuple[float, float]:
    from scipy.stats import bootstrap

    # scipy 1.15 renamed random_state to rng; take whichever this scipy has.
    seed_arg = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate BCa is detected from its NaN bounds, below
        result = bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                           method=method, vectorized=True, **{seed_arg: np.random.default_rng(BOOTSTRAP_SEED)})
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class Comparison:
    """A variant against its parent on one metric: the per-seed differences (variant - parent)."""

    difference: Estimate
    """The mean difference and its interval, over ``difference.n`` paired seeds."""
    parent_mean: float | None
    """The parent's mean over the same seeds (for a relative size of the difference)."""
    verdict: str


def paired_difference(variant: Sequence[float], parent: Sequence[float], *, higher_is_better: bool,
                      unit: str = "", digits: int = 3, relative: bool = True) -> Comparison:
    """Compare paired values (``variant[i]`` and ``parent[i]`` measured on the same seed); with
    ``relative`` the verdict also gives the difference as a fraction of the parent's mean."""
    if len(variant) != len(parent):
        raise ValueError(f"paired values must have the same length, got {len(variant)} and {len(parent)}")
    diff = mean_interval(np.asarray(variant, dtype=np.float64) - np.asarray(parent, dtype=np.float64))
    parent_mean = float(np.mean(parent)) if len(parent) else None
    return Comparison(diff, parent_mean, verdict(diff, higher_is_better=higher_is_better, unit=unit, digits=digits,
                                                  reference=parent_mean if relative else None))


def verdict(difference: Estimate, *, higher_is_better: bool, unit: str = "", digits: int = 3,
            reference: float | None = None) -> str:
    """'no detectable difference' when the interval of ``difference`` holds 0, else 'better by X'
    or 'worse by X' in the metric's direction (X with its unit, and relative to ``reference``, the
    parent's mean, when that is not 0); 'too few seeds to tell' without an interval."""
    if not difference.has_interval:
        return TOO_FEW
    if difference.contains(0.0):
        return NO_DIFFERENCE
    better = (difference.value > 0) == higher_is_better
    size = magnitude(abs(difference.value), decimals(difference, digits)) + (f" {unit}" if unit else "")
    if reference is not None and reference != 0 and math.isfinite(reference):
        size += f" ({percent(abs(difference.value / reference))})"
    return f"{'better' if better else 'worse'} by {size}"


def decimals(estimate: Estimate, digits: int) -> int:
    """At least ``digits`` decimals, more (up to four more) where a difference or its interval would
    otherwise round to zero: two significant digits of the larger of the two."""
    half_width = 0.0 if not estimate.has_interval else (estimate.high - estimate.low) / 2  # type: ignore[operator]
    size = max(abs(estimate.value), half_width)
    if size == 0 or not math.isfinite(size):
        return digits
    return min(digits + 4, max(digits, 1 - math.floor(math.log10(size))))


def magnitude(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, or two significant digits where those would show 0 (a
    difference found to be real is never written as 0.00)."""
    text = f"{value:.{digits}f}"
    return f"{value:.2g}" if value != 0 and float(text) == 0 else text


def percent(fraction: float) -> str:
    """A fraction as a percentage: whole percents from 10%, two significant digits below."""
    return f"{fraction:.0%}" if fraction >= 0.095 else f"{100 * fraction:.2g}%"
