"""Samplers over a denoiser ``D(x, sigma)`` and a decreasing sigma schedule ending at 0 (variance-exploding form).

Each takes ``x`` at ``sigmas[0]`` and returns the sample at ``sigmas[-1] = 0``. An optional ``guide(x, sigma,
generator) -> x'`` is applied before every network evaluation (the proximal step of Song et al. 2022 is one), and
``callback(dict)`` sees every step. A VP model is the same process in the scaled variable ``x / alpha(t)``
(Karras et al. 2022, Sec. 3), so these samplers serve both schedules through their noise levels ``schedule.sigma(t)``.
"""

from __future__ import annotations

import math

import torch

from recon.random import Generators, randn


def get_sigmas_karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022, eq. 5) noise levels, ``n`` of them plus a final 0, float64."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def get_sigmas_geometric(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Song et al.'s VE levels, geometric from ``sigma_max`` to ``sigma_min``, plus a final 0, float64."""
    sigmas = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64))
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _report(callback, **info):
    if callback is not None:
        callback(info)


@torch.no_grad()
def sample_em(denoiser, x, sigmas, *, guide=None, callback=None, generator: Generators = None):
    """Reverse-SDE Euler–Maruyama, the post's ``h`` (Song et al. 2021, eq. 6 with VE ``f = 0``, ``g^2 dt = d sigma^2``)."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        if guide is not None:
            x = guide(x, sigma, generator)  # Proximal step toward A x = y_t.
        denoised = denoiser(x, sigma)
        dvar = sigma**2 - sigma_next**2
        x_next = x + dvar * (denoised - x) / sigma**2  # Drift: g^2 times the score.
        if sigma_next > 0:
            x_next = x_next + math.sqrt(dvar) * randn(x.shape, generator, x.dtype, x.device)  # Diffusion.
        _report(callback, i=i, x=x, sigma=sigma, sigma_next=sigma_next, denoised=denoised, x_next=x_next)
        x = x_next
    return x


@torch.no_grad()
def sample_pc(denoiser, x, sigmas, *, snr: float = 0.16, n_corrector: int = 1, guide=None, guide_corrector=True,
              callback=None, generator: Generators = None):
    """Predictor–corrector (Song et al. 2021, Alg. 2 in VE form): Langevin corrector steps at each level, then an
    Euler–Maruyama predictor step; the guide runs before the predictor and, if ``guide_corrector``, before each
    corrector step (as in Song et al. 2022's code). ``snr`` sets the Langevin step ``2 (snr ||z|| / ||score||)^2``."""
    if not snr > 0:
        raise ValueError(f"snr must be > 0; got {snr}.")
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        for _ in range(n_corrector):
            if guide is not None and guide_corrector:
                x = guide(x, sigma, generator)  # Proximal step before the corrector.
            score = (denoiser(x, sigma) - x) / sigma**2
            z = randn(x.shape, generator, x.dtype, x.device)
            ratio = z.flatten(1).norm(dim=1) / score.flatten(1).norm(dim=1).clamp_min(1e-12)
            step = (2 * (snr * ratio) ** 2).reshape(-1, *([1] * (x.dim() - 1)))
            x = x + step * score + (2 * step).sqrt() * z  # Langevin corrector.
        if guide is not None:
            x = guide(x, sigma, generator)  # Proximal step before the predictor.
        denoised = denoiser(x, sigma)
        dvar = sigma**2 - sigma_next**2
        x_next = x + dvar * (denoised - x) / sigma**2
        if sigma_next > 0:
            x_next = x_next + math.sqrt(dvar) * randn(x.shape, generator, x.dtype, x.device)
        _report(callback, i=i, x=x, sigma=sigma, sigma_next=sigma_next, denoised=denoised, x_next=x_next)
        x = x_next
    return x


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, *, guide=None, callback=None, generator: Generators = None):
    """Probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma`` by Heun's method (Karras et al. 2022, Alg. 1)."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        if guide is not None:
            x = guide(x, sigma, generator)
        denoised = denoiser(x, sigma)
        d = (x - denoised) / sigma
        x_next = x + (sigma_next - sigma) * d  # Euler step.
        if sigma_next > 0:
            d_next = (x_next - denoiser(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * (d + d_next) / 2  # Second-order correction.
        _report(callback, i=i, x=x, sigma=sigma, sigma_next=sigma_next, denoised=denoised, x_next=x_next)
        x = x_next
    return x


def sample_dps(denoiser, x, sigmas, operator, y, *, zeta: float = 1.0, callback=None, generator: Generators = None):
    """Diffusion posterior sampling (Chung et al. 2023, Alg. 1 in VE form): an Euler–Maruyama step, then a step of
    ``zeta / ||y - A D(x)||`` along ``-grad_x ||y - A D(x, sigma)||^2``, differentiating through the network."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            denoised = denoiser(x, sigma)
            residual = (y - operator.A(denoised)).flatten(1)
            norm = residual.abs().norm(dim=1)
            grad = torch.autograd.grad((residual.abs() ** 2).sum(), x)[0]
        with torch.no_grad():
            dvar = sigma**2 - sigma_next**2
            x_next = x + dvar * (denoised - x) / sigma**2
            if sigma_next > 0:
                x_next = x_next + math.sqrt(dvar) * randn(x.shape, generator, x.dtype, x.device)
            step = (zeta / norm.clamp_min(1e-12)).reshape(-1, *([1] * (x.dim() - 1)))
            x_next = x_next - step * grad  # Measurement-consistency gradient step.
        _report(callback, i=i, x=x.detach(), sigma=sigma, sigma_next=sigma_next, denoised=denoised.detach(),
                x_next=x_next)
        x = x_next
    return x.detach()
