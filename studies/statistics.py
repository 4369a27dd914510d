"""Paired comparisons of two methods on the same test images: the mean difference with a bootstrap interval, and a
verdict that calls a difference whose interval covers 0 a tie."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.stats import bootstrap


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN for a single value)."""
    values = torch.as_tensor(values, dtype=torch.float64)
    se = float(values.std() / len(values) ** 0.5) if len(values) > 1 else float("nan")
    return float(values.mean()), se


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``mean`` of ``a - b`` (over ``n`` paired images, or of two independent samples' means with ``n`` the smaller
    one's size) and its ``level`` interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int
    level: float

    @property
    def verdict(self) -> str:
        """``"better"`` (interval above 0), ``"worse"`` (below 0) or ``"tie"`` (covers 0)."""
        return "better" if self.low > 0 else "worse" if self.high < 0 else "tie"

    def __str__(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}] ({self.verdict})"


def paired_difference(a, b, *, level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Comparison:
    """Mean of ``a - b`` over paired values (per-image PSNR of two methods on the same images) with a BCa bootstrap
    interval (Efron & Tibshirani 1993; scipy.stats.bootstrap), resampling images. Needs at least 3 pairs."""
    a, b = (np.asarray(torch.as_tensor(v, dtype=torch.float64)) for v in (a, b))
    if a.shape != b.shape or a.ndim != 1 or len(a) < 3:
        raise ValueError(f"need two 1-D sequences of equal length >= 3 (one value per image); got {a.shape}, {b.shape}.")
    d = a - b
    if np.ptp(d) <= 1e-9 * max(1.0, float(np.abs(d).max())):  # the same difference on every image: that point
        return Comparison(float(d[0]), float(d[0]), float(d[0]), len(d), level)
    result = bootstrap((d,), np.mean, confidence_level=level, n_resamples=n_resamples, method="BCa",
                       rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return Comparison(float(d.mean()), float(interval.low), float(interval.high), len(d), level)


def unpaired_difference(a, b, *, level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Comparison:
    """Mean of ``a`` minus mean of ``b`` for two independent samples (say a prior's denoising PSNR on its training
    images and on held-out ones) with a BCa bootstrap interval that resamples each sample on its own; ``n`` is the
    smaller sample's size. Needs at least 3 values in each."""
    a, b = (np.asarray(torch.as_tensor(v, dtype=torch.float64)) for v in (a, b))
    if a.ndim != 1 or b.ndim != 1 or min(len(a), len(b)) < 3:
        raise ValueError(f"need two 1-D samples of at least 3 values each; got shapes {a.shape} and {b.shape}.")
    result = bootstrap((a, b), lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis), confidence_level=level,
                       n_resamples=n_resamples, method="BCa", rng=np.random.default_rng(seed), vectorized=True)
    interval = result.confidence_interval
    return Comparison(float(a.mean() - b.mean()), float(interval.low), float(interval.high), min(len(a), len(b)),
                      level)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979) for a family of tests, in the order given: a test is called at
    level alpha when its adjusted value is at most alpha, and the chance of any false call in the family stays below
    alpha."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
