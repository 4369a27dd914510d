"""The guide protocol: hooks around one network evaluation of a sampler step.

A sampler step evaluates the denoiser once at ``(x, sigma)``. A guide may act

* ``before`` it, on the sampler's state ``x`` (Song et al.'s proximal step toward ``A x = y_t``);
* ``after`` it, on the clean estimate ``denoised = D(x, sigma)`` (a projection of the estimate, as in DDNM, or the
  step a consistency model takes before re-noising);
* through it: a guide that sets ``needs_grad`` receives ``x`` with gradients enabled and ``denoised`` attached to it in
  ``correction``, and returns a change of the sampler's next state (the likelihood gradient step of DPS), which the
  sampler adds to ``x_next`` after its own update.

Every sampler in :mod:`recon.sampling.loops` runs a guide through :func:`guided_denoise`, so a new method is a new guide
over the same samplers. A :class:`StepContext` tells the hooks where the step is.
"""

from __future__ import annotations

import dataclasses

import torch

from recon.random import Generators


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Where a sampler step is: index ``i``, noise level ``sigma`` now and ``sigma_next`` after the step, and the
    sampler's generator(s). A corrector step at a fixed level has ``sigma_next == sigma``."""

    i: int
    sigma: float
    sigma_next: float
    generator: Generators = None


class Guide:
    """Base guide: every hook is the identity (no correction). Override what the method needs."""

    needs_grad: bool = False

    def before(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Act on the sampler's state ``x`` at ``ctx.sigma``, before the network sees it."""
        return x

    def after(self, x: torch.Tensor, denoised: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Act on the clean estimate ``denoised = D(x, ctx.sigma)``; returns the estimate the step uses."""
        return denoised

    def correction(self, x: torch.Tensor, denoised: torch.Tensor, ctx: StepContext) -> torch.Tensor | None:
        """With ``needs_grad``: a change to add to the sampler's next state, computed through the network."""
        return None


class Compose(Guide):
    """Several guides in order: every ``before`` hook, then (after the network) every ``after`` hook; the corrections
    of gradient guides, all taken at the network's own estimate, add up."""

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

    def correction(self, x, denoised, ctx):
        parts = [c for g in self.guides if g.needs_grad for c in [g.correction(x, denoised, ctx)] if c is not None]
        return sum(parts) if parts else None


def guided_denoise(denoiser, x: torch.Tensor, ctx: StepContext, guide: Guide | None):
    """One network evaluation wrapped by the guide's hooks.

    Returns ``(x after the before-hook, the estimate after the after-hook, the correction or None)``."""
    if guide is None:
        return x, denoiser(x, ctx.sigma), None
    x = guide.before(x, ctx)
    if not guide.needs_grad:
        return x, guide.after(x, denoiser(x, ctx.sigma), ctx), None
    with torch.enable_grad():
        x_grad = x.detach().requires_grad_(True)
        denoised = denoiser(x_grad, ctx.sigma)
        correction = guide.correction(x_grad, denoised, ctx)
    return x, guide.after(x, denoised.detach(), ctx), correction
