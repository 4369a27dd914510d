"""Image-quality and data-consistency metrics, per image of a batch."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio

from recon._checks import check_finite
from recon.operators.base import LinearOperator


def _pairs(x: torch.Tensor, reference: torch.Tensor):
    if x.shape != reference.shape:
        raise ValueError(f"x and reference must have the same shape; got {tuple(x.shape)} and {tuple(reference.shape)}.")
    check_finite(x, "x")
    check_finite(reference, "reference")
    return x.detach().double().cpu().numpy(), reference.detach().double().cpu().numpy()


def psnr(x: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (scikit-image's implementation), shape ``(B,)``."""
    a, b = _pairs(x, reference)
    return torch.tensor([peak_signal_noise_ratio(r, i, data_range=data_range) for i, r in zip(a, b)])


def relative_residual(operator: LinearOperator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Measurement residual ``||A x - y|| / ||y||`` per image, shape ``(B,)``."""
    r = (operator.A(x) - y).reshape(x.shape[0], -1)
    return (r.abs().norm(dim=1) / y.reshape(y.shape[0], -1).abs().norm(dim=1)).double()


def relative_error(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``||x - x_ref|| / ||x_ref||`` per image, shape ``(B,)``."""
    a, b = _pairs(x, reference)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return torch.from_numpy(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))


def ssim(x: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image (scikit-image's implementation, default 7x7 window), shape ``(B,)``."""
    from skimage.metrics import structural_similarity

    a, b = _pairs(x, reference)
    return torch.tensor([structural_similarity(r[0], i[0], data_range=data_range) for i, r in zip(a, b)])
