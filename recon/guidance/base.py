"""The guide protocol: hooks around one network evaluation of a sampler step.

A sampler step evaluates the denoiser once at ``(x, sigma)``. A guide may act

* ``before`` it, on the sampler's state ``x`` (Song et al.'s proximal step toward ``A x = y_t``), and
* ``after`` it, on the clean estimate ``denoised = D(x, sigma)`` (a projection of the estimate, as in DDNM or the step a
  consistency model takes before re-noising; or a likelihood gradient through the network, as in DPS, for which the
  guide sets ``needs_grad`` and receives ``x`` with gradients enabled and ``denoised`` attached to it).

Every sampler in :mod:`recon.sampling.loops` runs a guide through :func:`guided_denoise`, so a new method is a new guide
over the same samplers. A :class:`StepContext` tells the hooks where the step is.
"""

from __future__ import annotations

import dataclasses

import torch

from recon.random import Generators


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Where a sampler step is: index ``i``, noise level ``sigma`` now and ``sigma_next`` after the step,
    ``score_weight`` (the factor of the score in this step's update of ``x``: ``sigma^2 - sigma_next^2`` for
    Euler–Maruyama, ``sigma (sigma - sigma_next)`` for the probability-flow ODE), and the sampler's generator(s)."""

    i: int
    sigma: float
    sigma_next: float
    score_weight: float
    generator: Generators = None


class Guide:
    """Base guide: both hooks are the identity. Override ``before`` and/or ``after``."""

    needs_grad: bool = False

    def before(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Act on the sampler's state ``x`` at ``ctx.sigma``, before the network sees it."""
        return x

    def after(self, x: torch.Tensor, denoised: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Act on the clean estimate ``denoised = D(x, ctx.sigma)``; returns the estimate the step uses."""
        return denoised


class Compose(Guide):
    """Several guides in order: every ``before`` hook, then (after the network) every ``after`` hook."""

    def __init__(self, *guides: Guide):
        self.guides = guides
        self.needs_grad = any(g.needs_grad for g in guides)

    def before(self, x, ctx):
        for g in self.guides:
            x = g.before(x, ctx)
        return x

    def after(self, x, denoised, ctx):
        for g in self.guides:
            denoised = g.after(x, denoised, ctx)
        return denoised


def guided_denoise(denoiser, x: torch.Tensor, ctx: StepContext, guide: Guide | None):
    """One network evaluation wrapped by the guide's hooks; returns ``(x after the before-hook, estimate)``."""
    if guide is None:
        return x, denoiser(x, ctx.sigma)
    x = guide.before(x, ctx)
    if not guide.needs_grad:
        return x, guide.after(x, denoiser(x, ctx.sigma), ctx)
    with torch.enable_grad():
        x_grad = x.detach().requires_grad_(True)
        denoised = guide.after(x_grad, denoiser(x_grad, ctx.sigma), ctx)
    return x, denoised.detach()
