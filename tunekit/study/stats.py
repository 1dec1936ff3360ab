"""Confidence intervals for a handful of seeds: Student-t, paired when the seeds match.

With 3-5 seeds a normal interval is far too narrow (t_{0.975,2} = 4.30, not 1.96).
"""

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided Student-t confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if x.size == 1:
        # One value has no spread to estimate (the sample deviation divides by n - 1 = 0, and t has
        # no degrees of freedom): nan says "unknown", where 0 would claim certainty.
        return float(x[0]), math.nan
    quantile = stats.t.ppf((1 + confidence) / 2, df=x.size - 1)
    return float(x.mean()), float(quantile * x.std(ddof=1) / math.sqrt(x.size))


def difference_ci(
    a: dict[int, float], b: dict[int, float], confidence: float = 0.95
) -> tuple[float, float, str]:
    """mean(a) - mean(b) with its interval half-width and the method: "paired t" or "Welch t".

    `a` and `b` map seed -> value. One seed fixes a cell's label subset and initialisation, so
    when both arms ran the same seeds the per-seed differences cancel that shared variance
    (paired t); otherwise the samples are independent with unequal variances (Welch t).
    """
    if a.keys() == b.keys():
        return *mean_ci([a[seed] - b[seed] for seed in sorted(a)], confidence), "paired t"
    xa, xb = np.array(list(a.values()), dtype=float), np.array(list(b.values()), dtype=float)
    mean = float(xa.mean() - xb.mean())
    if min(xa.size, xb.size) < 2:
        return mean, math.nan, "Welch t"
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    if va + vb == 0:
        return mean, 0.0, "Welch t"
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1))  # Welch-Satterthwaite
    return mean, float(stats.t.ppf((1 + confidence) / 2, df=df) * math.sqrt(va + vb)), "Welch t"
