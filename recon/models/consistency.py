"""A consistency model behind the same ``D(x, sigma)`` contract: ``f(x, sigma)`` maps any point of a probability-flow
trajectory to the trajectory's end (Song et al. 2023), so one evaluation is a sample and a few are a refined one.

The parametrisation is EDM's with the consistency boundary condition built in (Song et al. 2023, App. C): with
``s = 2 sigma`` and ``s_min = 2 sigma_min`` in the [-1, 1] space,
``c_skip = sd^2 / ((s - s_min)^2 + sd^2)`` and ``c_out = (s - s_min) sd / sqrt(s^2 + sd^2)``, so ``f(x, sigma_min) = x``
exactly. These are EDM's scalings shifted by ``s_min`` (0.004), so an EDM prior's weights are a consistency model's
natural initialisation: at every level above a few ``sigma_min`` the two agree to a fraction of a percent, and
consistency tuning (Geng et al. 2025, :class:`recon.training.losses.ECTLoss`) starts from the prior's denoiser.

Unlike a diffusion denoiser, the output is not the posterior mean ``E[x0 | x]``: it is one trajectory's end point, so
no score (Tweedie's formula) can be read from it; :meth:`ConsistencyDenoiser.score` refuses.
"""

from __future__ import annotations

import torch

from recon.models.checkpoints import build_unet, register_model_kind
from recon.models.denoiser import Denoiser, EDMDenoiser, sigma_batch
from recon.sampling import get_sigmas_karras, sample_heun


class ConsistencyDenoiser(EDMDenoiser):
    """``f(x, sigma)`` with ``f(x, sigma_min) = x``: EDM's preconditioning shifted by ``sigma_min`` (Song et al. 2023).

    A ``sigma`` at or below ``sigma_min`` returns ``x`` unchanged (the trajectory's end is the point itself)."""

    is_consistency = True

    def precondition(self, sigma: torch.Tensor):
        """``c_skip, c_out, c_in, c_noise`` for image-unit ``sigma`` (B,), with the boundary condition at ``sigma_min``."""
        s, s_min, sd = 2 * sigma, 2 * self.sigma_min, self.sigma_data
        c_skip = sd**2 / ((s - s_min) ** 2 + sd**2)
        c_out = (s - s_min) * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        return c_skip, c_out, c_in, s.log() / 4

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = sigma_batch(sigma, x).clamp_min(self.sigma_min)  # f(x, sigma <= sigma_min) = x
        return super().forward(x, sigma)

    def score(self, x, sigma):
        raise TypeError("a consistency model's output is a trajectory's end point, not the posterior mean, so Tweedie's "
                        "formula gives no score from it; use a diffusion prior (recon.load_prior('head_ct')) for "
                        "score-based methods, and method='consistency' with this model.")


@register_model_kind("consistency")
def build_consistency(config: dict) -> ConsistencyDenoiser:
    """A consistency model (:class:`ConsistencyDenoiser`) around the card's U-Net."""
    return ConsistencyDenoiser(build_unet(config), image_size=config["image_size"], **config["denoiser"])


def is_consistency_model(denoiser) -> bool:
    """Whether ``denoiser`` (possibly wrapped, e.g. by a counter) is a consistency model."""
    while hasattr(denoiser, "denoiser"):
        denoiser = denoiser.denoiser
    return bool(getattr(denoiser, "is_consistency", False))


class ODEConsistency(Denoiser):
    """The consistency function a diffusion denoiser defines, computed the slow way: solve its probability-flow ODE
    from ``(x, sigma)`` to 0 (Heun, ``steps`` Karras levels, ``2 steps - 1`` evaluations). What consistency
    distillation teaches a network to do in one evaluation; used for pictures and checks, where it is exact up to
    the ODE solver."""

    is_consistency = True

    def __init__(self, denoiser: Denoiser, steps: int = 40):
        self.denoiser, self.steps = denoiser, steps
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max
        self.image_size = denoiser.image_size

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = float(sigma)
        if sigma <= self.sigma_min:
            return x
        return sample_heun(self.denoiser, x, get_sigmas_karras(self.steps, self.sigma_min, sigma))
