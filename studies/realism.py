"""How realistic an image looks to a learned prior: the prior's denoising residual at a small noise level."""

from __future__ import annotations

import torch

from recon.random import Generators, randn


@torch.no_grad()
def denoising_residual(denoiser, x: torch.Tensor, sigma: float = 0.05, n_draws: int = 4,
                       generator: Generators = None) -> torch.Tensor:
    """RMS per image of ``D(x + sigma z, sigma) - x``, averaged over ``n_draws`` noise draws, shape ``(B,)``.

    A denoiser trained on clean images returns an image it finds realistic nearly unchanged, up to the noise it
    cannot tell from texture; artefacts it has never seen (streaks, aliasing, noise) are "corrected" away, and the
    residual grows. Compare values only at the same ``sigma`` and prior; ``sigma`` should lie well inside the prior's
    range and above the detail scale of interest.
    """
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for _ in range(n_draws):
        noisy = x + sigma * randn(x.shape, generator, x.dtype, x.device)
        total += (denoiser(noisy, sigma) - x).double().flatten(1).pow(2).mean(1)
    return (total / n_draws).sqrt()
