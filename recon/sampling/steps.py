"""One step of each sampler, as a short function of the state, the clean estimate and the noise levels (VE form).

The loops in :mod:`recon.sampling.loops` compose them; the score always comes from
:func:`score_from_denoised` (Tweedie), defined here.
"""

from __future__ import annotations

import math

import torch

from recon.random import Generators, randn


def score_from_denoised(x: torch.Tensor, denoised: torch.Tensor, sigma) -> torch.Tensor:
    """Tweedie's formula read backwards: ``grad log p_sigma(x) = (D(x, sigma) - x) / sigma^2`` (Efron 2011;
    Karras et al. 2022, eq. 3). ``sigma`` is a number or a ``(B,)`` tensor. Every sampler takes its score here."""
    if torch.is_tensor(sigma) and sigma.dim() > 0:
        sigma = sigma.reshape(-1, *([1] * (x.dim() - 1)))
    return (denoised - x) / sigma**2


def em_step(x: torch.Tensor, denoised: torch.Tensor, sigma: float, sigma_next: float,
            generator: Generators) -> torch.Tensor:
    """Reverse-SDE Euler–Maruyama, the post's ``h`` (Song et al. 2021, eq. 6 with VE ``f = 0``, ``g^2 dt = d sigma^2``):
    ``x + (sigma^2 - sigma_next^2) score + sqrt(sigma^2 - sigma_next^2) z``; no noise on the last step."""
    dvar = sigma**2 - sigma_next**2
    x_next = x + dvar * score_from_denoised(x, denoised, sigma)  # Drift: g^2 times the score.
    if sigma_next > 0:
        x_next = x_next + math.sqrt(dvar) * randn(x.shape, generator, x.dtype, x.device)  # Diffusion.
    return x_next


def langevin_step(x: torch.Tensor, score: torch.Tensor, snr: float, generator: Generators) -> torch.Tensor:
    """Langevin corrector (Song et al. 2021, Alg. 4 in VE form): ``x + eps score + sqrt(2 eps) z`` with the step
    ``eps = 2 (snr ||z|| / ||score||)^2`` per sample, so ``snr`` is the ratio of the drift to the noise."""
    z = randn(x.shape, generator, x.dtype, x.device)
    ratio = z.flatten(1).norm(dim=1) / score.flatten(1).norm(dim=1).clamp_min(1e-12)
    eps = (2 * (snr * ratio) ** 2).reshape(-1, *([1] * (x.dim() - 1)))
    return x + eps * score + (2 * eps).sqrt() * z


def ode_derivative(x: torch.Tensor, denoised: torch.Tensor, sigma: float) -> torch.Tensor:
    """The probability-flow ODE's ``dx/dsigma = (x - D(x, sigma)) / sigma = -sigma score`` (Karras et al. 2022, eq. 4)."""
    return -sigma * score_from_denoised(x, denoised, sigma)


def euler_step(x: torch.Tensor, d: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """Euler step of the probability-flow ODE from ``sigma`` to ``sigma_next`` along the derivative ``d``."""
    return x + (sigma_next - sigma) * d


def heun_step(x: torch.Tensor, d: torch.Tensor, d_next: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """Heun's second-order step (Karras et al. 2022, Alg. 1): along the mean of the derivatives at both ends."""
    return x + (sigma_next - sigma) * (d + d_next) / 2


def renoise_step(denoised: torch.Tensor, sigma_next: float, sigma_min: float, generator: Generators) -> torch.Tensor:
    """The consistency sampler's move to the next level (Song et al. 2023, Alg. 1): the clean estimate plus fresh noise
    ``sqrt(sigma_next^2 - sigma_min^2) z``, so the state sits on a trajectory at ``sigma_next``; on the last step
    (``sigma_next = 0``) the estimate itself."""
    if sigma_next <= 0:
        return denoised
    spread = math.sqrt(max(sigma_next**2 - sigma_min**2, 0.0))
    return denoised + spread * randn(denoised.shape, generator, denoised.dtype, denoised.device)  # Re-noising.
