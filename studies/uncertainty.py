"""How sure is it? K posterior samples per measurement: the posterior mean against one sample, a per-pixel standard
deviation map, the coverage of a 90 % prediction interval, and whether the spread tracks the error."""

from __future__ import annotations

import dataclasses

import torch
from scipy.stats import t as student_t

from recon.metrics import psnr
from recon.operators.noise import Measurement
from recon.reconstruction import reconstruct
from studies.protocol import tile


def posterior_samples(measurement: Measurement, prior, method: str, *, k: int = 8, seed: int = 0,
                      **options) -> torch.Tensor:
    """``k`` reconstructions per measurement, ``(k, B, 1, H, W)``, in one batched pass: sample ``j`` of image ``i``
    uses seed ``seed + j * B + i``, so every sample is a different draw of the sampler's noise."""
    B = measurement.y.shape[0]
    x, _ = reconstruct(tile(measurement, k), prior=prior, method=method, seed=[seed + j for j in range(k * B)],
                       **options)
    return x.reshape(k, B, *x.shape[1:])


@dataclasses.dataclass
class PosteriorSummary:
    """Per image (B,): PSNR of the posterior mean and of the first sample; coverage of the ``level`` prediction
    interval ``mean +- t s sqrt(1 + 1/k)`` (exact for Gaussian, exchangeable samples and truth, so a calibrated
    sampler covers ``level`` of the pixels); the Pearson correlation of the per-pixel standard deviation with the
    posterior mean's absolute error. ``mean`` and ``std`` are the maps."""

    mean: torch.Tensor
    std: torch.Tensor
    psnr_mean: torch.Tensor
    psnr_single: torch.Tensor
    coverage: torch.Tensor
    std_error_correlation: torch.Tensor
    level: float


def summarize(samples: torch.Tensor, truth: torch.Tensor, level: float = 0.9) -> PosteriorSummary:
    """The uncertainty report of ``samples`` ``(k, B, 1, H, W)`` against ``truth`` ``(B, 1, H, W)``."""
    k = samples.shape[0]
    if k < 2:
        raise ValueError(f"need at least 2 samples per image for a spread; got {k}.")
    samples = samples.double()
    mean, std = samples.mean(0), samples.std(0)
    half = float(student_t.ppf(0.5 + level / 2, k - 1)) * (1 + 1 / k) ** 0.5 * std
    covered = ((truth - mean).abs() <= half).double().flatten(1).mean(1)
    error = (mean - truth).abs().flatten(1)
    s = std.flatten(1)
    centred = (s - s.mean(1, keepdim=True)) * (error - error.mean(1, keepdim=True))
    correlation = centred.mean(1) / (s.std(1, unbiased=False) * error.std(1, unbiased=False)).clamp_min(1e-12)
    return PosteriorSummary(mean.float(), std.float(), psnr(mean, truth), psnr(samples[0], truth), covered,
                            correlation, level)
