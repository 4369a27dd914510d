"""The results table: every method on held-out images, per measurement setting, noise-free and noisy."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from recon.evaluation.metrics import psnr, ssim
from recon.operators.base import LinearOperator
from recon.operators.noise import relative_noise_std
from recon.reconstruction import reconstruct


@dataclasses.dataclass
class Setting:
    """One row group of the table: an operator on a test set, at a relative noise level."""

    name: str
    operator: LinearOperator
    images: torch.Tensor
    prior: object
    noise_level: float = 0.0
    methods: dict = dataclasses.field(default_factory=dict)  # label -> reconstruct() keywords, e.g. {"method": "tv"}


def noise_std_for(operator: LinearOperator, images: torch.Tensor, level: float) -> float:
    """Absolute noise standard deviation for a relative ``level``: ``level`` times the RMS of the acquired, noise-free
    measurement components of ``images`` (complex components count their real and imaginary parts)."""
    return relative_noise_std(operator, operator.A(images), level)


def noisy_measurements(operator: LinearOperator, images: torch.Tensor, level: float,
                       seed: int) -> tuple[torch.Tensor, float]:
    """``y = A x + eps`` at relative noise ``level`` (:func:`noise_std_for`), one seeded generator for the batch;
    returns ``(y, noise_std)``."""
    sigma = noise_std_for(operator, images, level)
    return operator.measure(images, sigma, torch.Generator().manual_seed(seed)), sigma


def measure(setting: Setting, seed: int) -> tuple[torch.Tensor, float]:
    """The setting's noisy measurements; returns ``(y, noise_std)``."""
    return noisy_measurements(setting.operator, setting.images, setting.noise_level, seed)


def mean_se(values) -> tuple[float, float]:
    values = torch.as_tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan


def run_method(setting: Setting, label: str, y: torch.Tensor, noise_std: float, seed: int, n: int | None = None) -> dict:
    """One method of a setting on its first ``n`` images (all by default); per-image PSNR, SSIM and residual.

    Every method is told the true noise level (``noise_std``) unless its keywords set it; the noise-aware methods
    (``proximal_ddrm``) use it, Song et al.'s ``proximal`` treats the data as exact. Image ``i`` uses seed
    ``seed + i`` whatever ``n``, so a prefix reproduces the full run's images."""
    n = setting.images.shape[0] if n is None else n
    options = {"noise_std": noise_std, **setting.methods[label]}
    x, record = reconstruct(y[:n], setting.operator, setting.prior, seed=seed, **options)
    truth = setting.images[:n]
    return {"setting": setting.name, "noise": setting.noise_level, "method": label,
            "options": {k: v for k, v in record.settings.items() if not torch.is_tensor(v)},
            "psnr": psnr(x, truth).tolist(), "ssim": ssim(x, truth).tolist(), "nfe": record.nfe,
            "seconds_per_image": record.seconds / n, "residual": record.residual.tolist()}


def run_setting(setting: Setting, seed: int = 0, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Reconstruct the setting's images with each of its methods; one row of per-image metrics per method."""
    y, sigma = measure(setting, seed)
    rows = []
    for label in setting.methods:
        rows.append(run_method(setting, label, y, sigma, seed))
        if progress is not None:
            progress(f"{setting.name}, noise {setting.noise_level:g}, {label}: {mean_se(rows[-1]['psnr'])[0]:.2f} dB")
    return rows


def tune_tv_weight(operator: LinearOperator, images: torch.Tensor, noise_level: float,
                   grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), seed: int = 0) -> float:
    """The TV weight (relative to ``||A||^2``) with the best mean PSNR on ``images``; pass validation images."""
    setting = Setting("tv", operator, images, None, noise_level, {w: {"method": "tv", "weight": w} for w in grid})
    rows = run_setting(setting, seed=seed)
    return max(rows, key=lambda row: mean_se(row["psnr"])[0])["method"]
