"""Today's training-free solvers over the same ``D(x, sigma)`` and operator: the data step acts on the denoised
estimate ``x0 = D(x_t, sigma)``, then the state is re-noised to the next level (instead of projecting the noisy
iterate, as Song et al.'s step and DPS do). Each is one registered method of :mod:`recon.methods`:

- ``diffpir`` (Zhu et al., CVPR 2023): the operator's closed-form weighted prox on ``x0``, weight
  ``rho_t = lam * sigma_y^2 / sigma_t^2``, then re-noising that mixes the estimated noise and fresh noise by ``zeta``;
- ``dds`` (Chung, Lee & Ye, ICLR 2024): a few conjugate-gradient steps on ``||A x - y||^2`` started at ``x0``, then
  DDIM-style re-noising with ``eta``;
- ``red_diff`` (Mardani et al., ICLR 2024): variational; Adam on the image ``x`` against the data term and the
  denoiser's regularisation ``lam (x - D(x + sigma z, sigma))`` (no gradient through the network) over decreasing
  levels;
- ``daps`` (Zhang et al., CVPR 2025): decoupled annealing; at each level a short Langevin chain on
  ``||A x0 - y||^2 / (2 s^2) + ||x0 - D(x_t)||^2 / (2 r_t^2)`` samples ``x0``, which is re-noised to the next level.

Each takes ``steps`` levels of the Karras schedule, one network evaluation per level (a prox, CG or Langevin step
costs no NFE), and ``start_sigma``: None starts from pure noise at the schedule's top, a number starts at that level
from the pseudo-inverse ``A^+ y`` plus noise (the warm start of Chung et al.'s CCDF, CVPR 2022). Randomness comes from
the problem's per-image generators.
"""

from __future__ import annotations

import itertools
import math

import torch

from recon.methods import Problem, Range, register_method
from recon.random import randn
from recon.sampling.schedules import SIGMA_MAX, SIGMA_MIN, get_sigmas_karras

START_SIGMA = Range(0.05, 10.0, log=True)


def levels(steps: int, start_sigma: float | None) -> list[float]:
    """``steps`` Karras levels from ``SIGMA_MAX`` (or ``start_sigma``) down to ``SIGMA_MIN``, then 0."""
    top = SIGMA_MAX if start_sigma is None else float(start_sigma)
    if not SIGMA_MIN < top <= SIGMA_MAX:
        raise ValueError(f"start_sigma must lie in ({SIGMA_MIN}, {SIGMA_MAX}]; got {start_sigma}.")
    return [float(s) for s in get_sigmas_karras(steps, SIGMA_MIN, top)]


def start(problem: Problem, steps: int, start_sigma: float | None) -> tuple[torch.Tensor, list[float]]:
    """The first state and the levels: pure noise at ``SIGMA_MAX``, or (warm start) ``A^+ y`` plus noise at
    ``start_sigma``; :func:`levels` down to 0."""
    sigmas = levels(steps, start_sigma)
    x = problem.initial_noise(sigmas[0])
    if start_sigma is not None:
        x = x + problem.operator.A_pinv(problem.y).real.to(x.dtype)
    return x, sigmas


def noise_like(problem: Problem, x: torch.Tensor) -> torch.Tensor:
    return randn(x.shape, problem.generator, x.dtype, x.device)


def weighted_prox(problem: Problem, z: torch.Tensor, rho: float) -> torch.Tensor:
    """``argmin_x ||A x - y||^2 + rho ||x - z||^2 = z + V diag(s / (s^2 + rho)) U^T (y - A z)`` (the operator's
    spectrum); ``rho = 0`` is the projection ``z + A^+ (y - A z)``."""
    operator = problem.operator
    if not operator.has_spectrum:
        raise ValueError(f"{type(operator).__name__} has no spectral decomposition here; DiffPIR's closed-form step "
                         "needs one (for CT, raise svd_max), or use method='dds' (conjugate gradients).")
    residual = problem.y - operator.A(z)
    return z + operator.pinv_filtered(residual, lambda w: w / (w + rho)).real.to(z.dtype)


def conjugate_gradient(problem: Problem, z: torch.Tensor, iters: int, gamma: float = 0.0) -> torch.Tensor:
    """``iters`` conjugate-gradient steps on ``(A^T A + gamma I) d = A^T (y - A z)`` from ``d = 0``, per image;
    returns ``z + d`` (DDS's data step: few steps keep ``x`` near the denoised estimate)."""
    op, shape = problem.operator, z.shape

    def normal(v):
        return (op.A_adjoint(op.A(v.reshape(shape))).real.reshape(shape[0], -1) + gamma * v).to(z.dtype)

    d = torch.zeros_like(z).reshape(shape[0], -1)
    r = op.A_adjoint(problem.y - op.A(z)).real.reshape(shape[0], -1).to(z.dtype)
    p, rr = r.clone(), (r * r).sum(1, keepdim=True)
    floor = 1e-12 * rr  # an image whose residual fell below this has converged: its steps stop
    for _ in range(iters):
        active = rr > floor
        q = normal(p)
        alpha = torch.where(active, rr / (p * q).sum(1, keepdim=True).clamp_min(1e-30), 0.0)
        d, r = d + alpha * p, r - alpha * q
        rr_next = (r * r).sum(1, keepdim=True)
        p, rr = r + torch.where(active, rr_next / rr.clamp_min(1e-30), 0.0) * p, torch.where(active, rr_next, rr)
    return z + d.reshape(shape)


def renoise(problem: Problem, x: torch.Tensor, x0: torch.Tensor, sigma: float, sigma_next: float,
            mix: float) -> torch.Tensor:
    """The state at ``sigma_next`` from the data-consistent estimate ``x0``: its noise is the estimated one
    ``(x - x0) / sigma`` and fresh noise, mixed with weights ``sqrt(1 - mix)`` and ``sqrt(mix)`` (DiffPIR's zeta,
    DDIM's eta squared); the estimate itself on the last level."""
    if sigma_next <= 0:
        return x0
    estimated = (x - x0) / sigma
    return x0 + sigma_next * (math.sqrt(1 - mix) * estimated + math.sqrt(mix) * noise_like(problem, x))


def check_mix(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must lie in [0, 1]; got {value}.")


@register_method("diffpir", space={"lam": Range(1e-2, 1e4, log=True), "zeta": Range(0.0, 1.0)}, budget="steps")
def diffpir(problem: Problem, *, steps: int = 30, lam: float = 7.0, zeta: float = 0.3, sigma_y: float = 0.01,
            start_sigma: float | None = None) -> torch.Tensor:
    """DiffPIR (Zhu et al., CVPR 2023): at every level the closed-form prox of the data term on the denoised estimate,
    ``argmin ||A x - y||^2 + rho_t ||x - D(x_t)||^2`` with ``rho_t = lam sigma_y^2 / sigma_t^2``, then re-noising
    with ``zeta`` fresh noise. ``sigma_y`` is the data's noise standard deviation (the measurement's own when it has
    one; the option's value for noise-free data, where it only scales ``lam``)."""
    check_mix("zeta", zeta)
    prior = problem.require_prior()
    noise = problem.noise_std if problem.noise_std > 0 else sigma_y
    x, sigmas = start(problem, steps, start_sigma)
    for i, (sigma, sigma_next) in enumerate(itertools.pairwise(sigmas)):
        denoised = prior(x, sigma)
        x0 = weighted_prox(problem, denoised, lam * noise**2 / sigma**2)
        x_next = renoise(problem, x, x0, sigma, sigma_next, zeta)
        report_step(problem, i, sigma, sigma_next, x, denoised, x_next)
        x = x_next
    return x


@register_method("dds", space={"eta": Range(0.0, 1.0)}, budget="steps")
def dds(problem: Problem, *, steps: int = 30, cg_iters: int = 5, eta: float = 0.8, gamma: float = 0.0,
        start_sigma: float | None = None) -> torch.Tensor:
    """DDS (Chung, Lee & Ye, ICLR 2024): at every level ``cg_iters`` conjugate-gradient steps on the data term
    started at the denoised estimate (``gamma > 0`` adds ``gamma ||x - D(x_t)||^2``, for noisy data), then DDIM
    re-noising with ``eta``. The few CG steps are the regulariser (DDS uses 5), so only ``eta`` is searched."""
    check_mix("eta", eta)
    prior = problem.require_prior()
    x, sigmas = start(problem, steps, start_sigma)
    for i, (sigma, sigma_next) in enumerate(itertools.pairwise(sigmas)):
        denoised = prior(x, sigma)
        x0 = conjugate_gradient(problem, denoised, cg_iters, gamma)
        x_next = renoise(problem, x, x0, sigma, sigma_next, eta**2)
        report_step(problem, i, sigma, sigma_next, x, denoised, x_next)
        x = x_next
    return x


# RED-diff's lam weighs the regulariser against a data term normalised by ||y||^2, so useful values lie far below the
# paper's 0.25 (which scores 10.9 and 16.4 dB at 30 steps on 4 MRI 4x and CT 16-view test images, against 24.5 and
# 30.4 at 1e-4, the grid's optimum on CT at 8 and 60 NFE): the default and the search range are set for our scale.
@register_method("red_diff", space={"lam": Range(1e-5, 1e1, log=True), "lr": Range(1e-3, 0.5, log=True)},
                 budget="steps")
def red_diff(problem: Problem, *, steps: int = 30, lam: float = 1e-4, lr: float = 0.05,
             start_sigma: float | None = None) -> torch.Tensor:
    """RED-diff (Mardani et al., ICLR 2024): Adam on the image ``x``, from ``A^+ y``, against
    ``||A x - y||^2 / 2`` (normalised by ``||y||^2``) and the denoiser's regulariser, whose gradient at level
    ``sigma_t`` is ``lam (x - D(x + sigma_t z, sigma_t))`` (no gradient through the network), over decreasing levels
    (from ``start_sigma`` if given). Deterministic but for the noise ``z`` of each level."""
    prior = problem.require_prior()
    sigmas = levels(steps, start_sigma)
    x = problem.operator.A_pinv(problem.y).real.float().clone().requires_grad_(True)
    scale = problem.y.abs().pow(2).flatten(1).sum(1).clamp_min(1e-12)
    optimizer = torch.optim.Adam([x], lr=lr)
    for i, sigma in enumerate(sigmas[:-1]):
        with torch.no_grad():
            noisy = x + sigma * noise_like(problem, x)
            denoised = prior(noisy, sigma)
        optimizer.zero_grad()
        with torch.enable_grad():  # the data term's gradient (the network's is never taken)
            data = ((problem.operator.A(x) - problem.y).abs().pow(2).flatten(1).sum(1) / (2 * scale)).sum()
            data.backward()
        x.grad += lam * (x.detach() - denoised)
        optimizer.step()
        report_step(problem, i, sigma, sigmas[i + 1], noisy, denoised, x.detach())
    return x.detach()


@register_method("daps", space={"step": Range(0.01, 1.0, log=True), "s": Range(1e-3, 1.0, log=True)},
                 budget="steps")
def daps(problem: Problem, *, steps: int = 30, langevin: int = 20, step: float = 0.46, s: float = 1e-3,
         start_sigma: float | None = None) -> torch.Tensor:
    """DAPS (Zhang et al., CVPR 2025): at each level ``x0`` is sampled given ``x_t`` and ``y`` by ``langevin``
    Langevin steps on ``||A x0 - y||^2 / (2 s^2) + ||x0 - D(x_t)||^2 / (2 r_t^2)``, ``r_t = sigma_t``, from
    ``D(x_t)``, each of size ``step / L_t`` (``L_t`` the posterior's curvature bound ``||A||^2 / s^2 + 1 / r_t^2``),
    then re-noised to the next level with fresh noise. ``s`` is the data's noise standard deviation (the
    measurement's own when it has one). The defaults are the protocol's tuned values on the book's settings at 60
    levels: ``step`` in 6 of 9 (0.1 and 0.22 on MRI 4x and noisy MRI), ``s`` in every noise-free one (the search
    range's lower end)."""
    prior = problem.require_prior()
    noise = problem.noise_std if problem.noise_std > 0 else s
    norm2 = operator_norm2(problem)
    x, sigmas = start(problem, steps, start_sigma)
    for i, (sigma, sigma_next) in enumerate(itertools.pairwise(sigmas)):
        denoised = prior(x, sigma)
        eta = step / (norm2 / noise**2 + 1 / sigma**2)
        x0 = denoised
        for _ in range(langevin):
            data = problem.operator.A_adjoint(problem.operator.A(x0) - problem.y).real.to(x0.dtype)
            drift = -data / noise**2 - (x0 - denoised) / sigma**2
            x0 = x0 + eta * drift + math.sqrt(2 * eta) * noise_like(problem, x0)
        x_next = x0 + sigma_next * noise_like(problem, x0) if sigma_next > 0 else x0
        report_step(problem, i, sigma, sigma_next, x, denoised, x_next)
        x = x_next
    return x


def operator_norm2(problem: Problem) -> float:
    """``||A||^2``, the largest eigenvalue of ``A^T A`` (the spectrum's, else power iteration)."""
    return float(problem.operator.norm()) ** 2


def report_step(problem: Problem, i: int, sigma: float, sigma_next: float, x, denoised, x_next) -> None:
    if problem.callback is not None:
        problem.callback({"i": i, "sigma": sigma, "sigma_next": sigma_next, "x": x, "x_guided": x,
                          "denoised": denoised, "x_next": x_next})
