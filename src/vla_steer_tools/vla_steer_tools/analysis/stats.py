"""Paired comparisons with bootstrap confidence intervals (scipy.stats.bootstrap), shared by replay,
`vla-steer analyze` and `vla-steer validate`.

Pairs are the same observation (open loop) or the same init state (closed loop) under two
conditions, so the comparison is on per-pair differences: it removes the between-placement spread
that dwarfs a steering effect. The effect size is Cohen's d_z (mean difference / sd of the
differences), the paired one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import bootstrap, wilcoxon

#: Bootstrap resamples: enough for stable 95% limits on tens of pairs, fast on 2 cores.
N_RESAMPLES = 2000


@dataclass(frozen=True)
class PairedComparison:
    """treated - reference over n pairs. ci95: bootstrap (BCa) interval of the mean difference;
    relative: mean difference / |mean reference|; d_z: paired effect size; p: Wilcoxon signed-rank."""

    n: int
    mean_reference: float
    mean_treated: float
    mean_diff: float
    ci95: tuple[float, float]
    relative: float
    d_z: float
    p: float

    def as_dict(self) -> dict:
        return asdict(self)

    def excludes_zero(self) -> bool:
        return bool(self.ci95[0] > 0 or self.ci95[1] < 0)


def paired_comparison(treated: np.ndarray, reference: np.ndarray, seed: int = 0) -> PairedComparison:
    """Compare paired samples (NaN pairs dropped). Identical pairs give a zero-width interval."""
    x, y = np.asarray(treated, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in shape: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    nan = float("nan")
    if n == 0:
        return PairedComparison(0, nan, nan, nan, (nan, nan), nan, nan, nan)
    d = x - y
    mean_d, ref = float(d.mean()), float(y.mean())
    rel = mean_d / abs(ref) if ref != 0 else nan
    if n < 2 or np.ptp(d) == 0:  # no spread: the interval is the value itself
        return PairedComparison(n, ref, float(x.mean()), mean_d, (mean_d, mean_d), rel,
                                nan if mean_d == 0 or n < 2 else float(np.sign(mean_d) * np.inf), 1.0 if mean_d == 0 else nan)
    res = bootstrap((d,), np.mean, n_resamples=N_RESAMPLES, confidence_level=0.95, method="BCa",
                    random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa degenerate on tiny samples: percentile instead
        res = bootstrap((d,), np.mean, n_resamples=N_RESAMPLES, method="percentile", random_state=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return PairedComparison(n, ref, float(x.mean()), mean_d, (lo, hi), rel, float(mean_d / d.std(ddof=1)), p)
