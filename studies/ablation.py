"""The lam ablation the post asks for: one batched sampling pass over a grid of lam for a set of images."""

from __future__ import annotations

import dataclasses

import torch

from recon.metrics import psnr, ssim
from recon.operators.base import LinearOperator
from recon.operators.noise import simulate
from recon.reconstruction import reconstruct
from studies.protocol import tile
from studies.realism import denoising_residual


@dataclasses.dataclass
class LambdaSweep:
    """Reconstructions ``(L, N, 1, H, W)`` and per-image metrics ``(L, N)`` for ``L`` values of lam, ``N`` images."""

    lams: torch.Tensor
    images: torch.Tensor
    measurements: torch.Tensor
    noise_std: float
    recons: torch.Tensor
    psnr: torch.Tensor
    ssim: torch.Tensor
    residual: torch.Tensor
    realism: torch.Tensor
    seconds: float


def lambda_sweep(operator: LinearOperator, images: torch.Tensor, prior, lams, *, noise=None,
                 fine: torch.Tensor | None = None, steps: int = 30, sampler: str = "em", seed: int = 0,
                 realism_sigma: float = 0.05) -> LambdaSweep:
    """Reconstruct every image at every lam in one batch (lam per sample) with the proximal step (DDRM's noise-aware
    rule under a ``noise`` model, Song et al.'s step without one) and no final projection, so that lam's effect on the
    data fit shows. Measurements are simulated off-grid from ``fine`` when given (:func:`recon.operators.simulate`).
    Image ``i`` uses seed ``seed + i`` at every lam, so the rows differ only by lam. ``realism`` is
    :func:`studies.realism.denoising_residual` under the same prior."""
    lams = torch.as_tensor(lams, dtype=torch.float64)
    L, N = len(lams), images.shape[0]
    measurement = simulate(operator, images, noise, seed, fine)
    x, record = reconstruct(tile(measurement, L), prior=prior, method="proximal_ddrm", steps=steps, sampler=sampler,
                            lam=lams.repeat_interleave(N), seed=[seed + i for i in range(N)] * L)
    truth = images.repeat(L, 1, 1, 1)
    realism = denoising_residual(prior, x, sigma=realism_sigma, generator=torch.Generator().manual_seed(seed))
    return LambdaSweep(lams, images, measurement.y, measurement.noise_std, x.reshape(L, N, *x.shape[1:]),
                       psnr(x, truth).reshape(L, N), ssim(x, truth).reshape(L, N), record.residual.reshape(L, N),
                       realism.reshape(L, N), record.seconds)
