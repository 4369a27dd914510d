"""The results table: every method on held-out images, per measurement setting, noise-free and noisy."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from recon.metrics import psnr, ssim
from recon.operators.base import LinearOperator
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
    y = operator.A(images)
    acquired = operator.acquired(torch.ones_like(y)) != 0
    values = torch.cat([y.real[acquired], y.imag[acquired]]) if y.is_complex() else y[acquired]
    return float(level * values.pow(2).mean().sqrt())


def measure(setting: Setting, seed: int) -> tuple[torch.Tensor, float]:
    """Noisy measurements of the setting's images with a seeded generator; returns ``(y, noise_std)``."""
    sigma = noise_std_for(setting.operator, setting.images, setting.noise_level)
    g = torch.Generator().manual_seed(seed)
    return setting.operator.measure(setting.images, sigma, g), sigma


def mean_se(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    return float(values.mean()), float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan


def run_setting(setting: Setting, seed: int = 0, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Reconstruct the setting's images with each of its methods; one row of metrics per method.

    Every method is told the true noise level (``noise_std``) unless its keywords set it (``noise_std=0`` gives the
    paper's exact step on noisy data, to show what noise-awareness buys)."""
    y, sigma = measure(setting, seed)
    rows = []
    for label, options in setting.methods.items():
        options = {"noise_std": sigma, **options}
        x, record = reconstruct(y, setting.operator, setting.prior, seed=seed, **options)
        p, s = psnr(x, setting.images), ssim(x, setting.images)
        rows.append({"setting": setting.name, "noise": setting.noise_level, "method": label,
                     "psnr": mean_se(p), "ssim": mean_se(s), "nfe": record.nfe,
                     "seconds_per_image": record.seconds / len(x), "residual": float(record.residual.mean()),
                     "images": len(x)})
        if progress is not None:
            progress(f"{setting.name}, noise {setting.noise_level:g}, {label}: {rows[-1]['psnr'][0]:.2f} dB")
    return rows


def tune_tv_weight(operator: LinearOperator, images: torch.Tensor, noise_level: float,
                   grid=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), seed: int = 0) -> float:
    """The TV weight (relative to ``||A||^2``) with the best mean PSNR on ``images``; pass validation images."""
    setting = Setting("tv", operator, images, None, noise_level, {w: {"method": "tv", "tv_weight": w} for w in grid})
    rows = run_setting(setting, seed=seed)
    return max(rows, key=lambda row: row["psnr"][0])["method"]
