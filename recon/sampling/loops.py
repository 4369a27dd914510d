"""Samplers over a denoiser ``D(x, sigma)`` and a decreasing sigma schedule ending at 0 (variance-exploding form).

Each is a short loop over :mod:`recon.sampling.steps` with one signature: it takes ``x`` at ``sigmas[0]`` and returns
the sample at ``sigmas[-1] = 0``. A ``guide`` (:mod:`recon.guidance`) acts around every network evaluation, and
``callback(dict)`` sees every step: ``i``, ``sigma``, ``sigma_next``, ``x`` (the state entering the step), ``x_guided``
(after the guide's ``before`` hook), ``denoised`` (the estimate the step used) and ``x_next``. A VP model is the same
process in the scaled variable ``x / alpha(t)`` (Karras et al. 2022, Sec. 3), so these samplers serve both schedules
through their noise levels ``schedule.sigma(t)``. The levels come from the ``get_sigmas_*`` functions of
:mod:`recon.sampling.schedules`.
"""

from __future__ import annotations

import torch

from recon.random import Generators
from recon.sampling.hooks import Guide, StepContext, guided_denoise
from recon.sampling.steps import (
    em_step,
    euler_step,
    heun_step,
    langevin_step,
    ode_derivative,
    renoise_step,
    score_from_denoised,
)


def levels(sigmas: torch.Tensor):
    """``(i, sigma, sigma_next)`` for every step of a schedule, as Python floats."""
    values = [float(s) for s in sigmas]
    return [(i, values[i], values[i + 1]) for i in range(len(values) - 1)]


def report(callback, ctx: StepContext, **tensors) -> None:
    if callback is not None:
        callback({"i": ctx.i, "sigma": ctx.sigma, "sigma_next": ctx.sigma_next, **tensors})


def corrected(x_next: torch.Tensor, correction: torch.Tensor | None) -> torch.Tensor:
    return x_next if correction is None else x_next + correction  # The guide's gradient step, if any.


def guided_em_step(denoiser, x, ctx: StepContext, guide: Guide | None, callback) -> torch.Tensor:
    """One guided Euler–Maruyama step from ``ctx.sigma`` to ``ctx.sigma_next``, reported to ``callback``."""
    x_guided, denoised, correction = guided_denoise(denoiser, x, ctx, guide)
    x_next = corrected(em_step(x_guided, denoised, ctx.sigma, ctx.sigma_next, ctx.generator), correction)
    report(callback, ctx, x=x, x_guided=x_guided, denoised=denoised, x_next=x_next)
    return x_next


@torch.no_grad()
def sample_em(denoiser, x, sigmas, *, guide: Guide | None = None, callback=None, generator: Generators = None):
    """Reverse-SDE Euler–Maruyama (:func:`recon.sampling.steps.em_step`), the post's ``h``."""
    for i, sigma, sigma_next in levels(sigmas):
        x = guided_em_step(denoiser, x, StepContext(i, sigma, sigma_next, generator), guide, callback)
    return x


@torch.no_grad()
def sample_pc(denoiser, x, sigmas, *, snr: float = 0.16, n_corrector: int = 1, guide: Guide | None = None,
              guide_corrector: bool = True, callback=None, generator: Generators = None):
    """Predictor–corrector (Song et al. 2021, Alg. 2 in VE form), in the order of the authors' code: at each level
    ``n_corrector`` Langevin steps, then an Euler–Maruyama predictor step to the next level. The guide's ``before``
    hook also runs before each corrector step when ``guide_corrector`` (as in Song et al. 2022's code); its ``after``
    hook and its correction act in the predictor only."""
    if not snr > 0:
        raise ValueError(f"snr must be > 0; got {snr}.")
    for i, sigma, sigma_next in levels(sigmas):
        for _ in range(n_corrector):
            corrector_ctx = StepContext(i, sigma, sigma, generator)
            if guide is not None and guide_corrector:
                x = guide.before(x, corrector_ctx)  # Guide before the corrector.
            x = langevin_step(x, score_from_denoised(x, denoiser(x, sigma), sigma), snr, generator)
        x = guided_em_step(denoiser, x, StepContext(i, sigma, sigma_next, generator), guide, callback)  # Predictor.
    return x


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, *, guide: Guide | None = None, callback=None, generator: Generators = None):
    """Probability-flow ODE by Heun's method (Karras et al. 2022, Alg. 1). The guide acts at the first evaluation of each
    step (the second, at ``sigma_next``, is unguided); its correction is added after the second-order step."""
    for i, sigma, sigma_next in levels(sigmas):
        ctx = StepContext(i, sigma, sigma_next, generator)
        x_guided, denoised, correction = guided_denoise(denoiser, x, ctx, guide)
        d = ode_derivative(x_guided, denoised, sigma)
        x_next = euler_step(x_guided, d, sigma, sigma_next)  # Euler step.
        if sigma_next > 0:
            d_next = ode_derivative(x_next, denoiser(x_next, sigma_next), sigma_next)
            x_next = heun_step(x_guided, d, d_next, sigma, sigma_next)  # Second-order correction.
        x_next = corrected(x_next, correction)
        report(callback, ctx, x=x, x_guided=x_guided, denoised=denoised, x_next=x_next)
        x = x_next
    return x


@torch.no_grad()
def sample_consistency(denoiser, x, sigmas, *, guide: Guide | None = None, callback=None,
                       generator: Generators = None):
    """Multistep consistency sampling (Song et al. 2023, Alg. 1): at each level one evaluation maps the state to its
    trajectory's end, the guide acts (its ``before`` hook on the state, its ``after`` hook on the clean estimate,
    before re-noising: where the post puts the proximal step), and :func:`recon.sampling.steps.renoise_step` moves
    the estimate to the next level. Returns the last guided estimate."""
    for i, sigma, sigma_next in levels(sigmas):
        ctx = StepContext(i, sigma, sigma_next, generator)
        x_guided, denoised, correction = guided_denoise(denoiser, x, ctx, guide)
        x_next = corrected(renoise_step(denoised, sigma_next, denoiser.sigma_min, generator), correction)
        report(callback, ctx, x=x, x_guided=x_guided, denoised=denoised, x_next=x_next)
        x = x_next
    return x


SAMPLERS = {"em": sample_em, "pc": sample_pc, "heun": sample_heun, "consistency": sample_consistency}
# Network evaluations per level at each sampler's defaults: the predictor-corrector's one Langevin step and its
# predictor; Heun's two (one on its last level, to 0); the others one.
EVALUATIONS_PER_LEVEL = {"em": 1, "pc": 2, "heun": 2, "consistency": 1}
