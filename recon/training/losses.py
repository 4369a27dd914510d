"""Training losses as small callables ``loss(model, x0, generator) -> scalar`` that one loop can train."""

from __future__ import annotations

import torch

from recon.models.denoiser import EDMDenoiser


class EDMLoss:
    """EDM's weighted denoising loss (Karras et al. 2022, eq. 2 with Table 1): ``sigma`` log-normal with ``p_mean``,
    ``p_std`` in the [-1, 1] space of the preconditioning, weight ``(s^2 + sd^2) / (s sd)^2``, so that the
    network's effective target has unit variance at every noise level."""

    name = "edm"

    def __init__(self, p_mean: float = -1.2, p_std: float = 1.2):
        self.p_mean, self.p_std = p_mean, p_std

    def config(self) -> dict:
        return {"name": self.name, "p_mean": self.p_mean, "p_std": self.p_std}

    def sample_sigma(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        """Noise levels in image units (half those of the [-1, 1] space)."""
        return torch.exp(self.p_mean + self.p_std * torch.randn(batch, generator=generator, device=device)) / 2

    def per_example(self, model: EDMDenoiser, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor):
        """The weighted squared error in the [-1, 1] space per example, for given ``sigma`` (B,) and unit ``noise``."""
        s, sd = 2 * sigma, model.sigma_data
        weight = ((s**2 + sd**2) / (s * sd) ** 2).reshape(-1, 1, 1, 1)
        error = 2 * (model(x0 + sigma.reshape(-1, 1, 1, 1) * noise, sigma) - x0)
        return (weight * error.float() ** 2).flatten(1).mean(1)

    def __call__(self, model: EDMDenoiser, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        sigma = self.sample_sigma(x0.shape[0], generator, x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        return self.per_example(model, x0, sigma, noise).mean()


LOSSES = {"edm": EDMLoss}
