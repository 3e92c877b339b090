"""The Wilson score interval for a proportion, for groups too small for the percentile bootstrap.

A percentile bootstrap of a group whose outcomes are all the same resamples only that outcome, so
it reports a zero-width interval (n = 6, 6 concordant: "1.000–1.000"), and it is too narrow for
small n in general. Wilson (1927), "Probable inference, the law of succession, and statistical
inference", JASA 22(158), https://doi.org/10.1080/01621459.1927.10502953: the interval inverts the
score test, so it stays inside [0, 1] and has width > 0 for any n ≥ 1.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 0.975 quantile


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for an observed share `p` of `n` trials."""
    if n <= 0:
        raise ValueError("n must be positive")
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
