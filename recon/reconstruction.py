"""One call for users and notebooks: ``reconstruct(y, operator, prior, method=...)`` returns the image and a record."""

from __future__ import annotations

import dataclasses
import time

import torch

from recon.baselines import tv_least_squares
from recon.checkpoints import load_denoiser
from recon.denoiser import Denoiser, EDMDenoiser
from recon.guidance import ProximalGuide
from recon.metrics import relative_residual
from recon.operators.base import LinearOperator
from recon.operators.mri import CartesianMRI
from recon.random import generators, randn
from recon.samplers import get_sigmas_karras, sample_dps, sample_em, sample_pc

SAMPLERS = {"em": sample_em, "pc": sample_pc}
# Start and end of the sampling schedule, in image units: at sigma = 10 a [0, 1] image is buried in noise.
SIGMA_MAX, SIGMA_MIN = 10.0, 0.005


@dataclasses.dataclass
class Record:
    """What a reconstruction cost and how well it fits: network evaluations (batched calls), wall time, and the
    measurement residual ``||A x - y|| / ||y||`` per image."""

    method: str
    nfe: int
    seconds: float
    residual: torch.Tensor
    settings: dict


class _Counting:
    """Wraps a denoiser to count network evaluations; runs the network under bf16 autocast when asked."""

    def __init__(self, denoiser: Denoiser, bf16: bool):
        self.denoiser, self.bf16, self.calls = denoiser, bf16, 0

    def __call__(self, x, sigma):
        self.calls += 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.denoiser(x, sigma).float()


def load_prior(name_or_path: str = "head_ct", device: str = "cpu") -> EDMDenoiser:
    """A shipped prior by name (``"head_ct"``, ``"brain"``) or a checkpoint folder; the checksum is verified."""
    return load_denoiser(name_or_path, device)


# Defaults per method, chosen on validation images with a half-trained prior (benchmarks/tune_defaults.py reruns
# the choice on the shipped priors): at 60 network evaluations
# Euler–Maruyama beat predictor–corrector, DPS did best near zeta = 1, and TV's weight (relative to ||A||^2) wants
# about 3e-4 for sparse-view CT and 1e-2 for Cartesian MRI.
DEFAULTS = {
    "proximal": {"steps": 60, "lam": 1.0, "sampler": "em", "snr": 0.16},
    "dps": {"steps": 60, "zeta": 1.0},
    "tv": {"iters": 300},
}


def default_tv_weight(operator: LinearOperator) -> float:
    """TV weight relative to ``||A||^2`` for this kind of operator (validation-tuned; see DEFAULTS)."""
    return 1e-2 if isinstance(operator, CartesianMRI) else 3e-4


def _check_prior(prior, operator: LinearOperator):
    if prior is None:
        raise ValueError("this method needs a prior: pass prior=recon.load_prior('head_ct') (or 'brain', or a path).")
    if prior.image_size is not None and operator.image_shape != (prior.image_size, prior.image_size):
        raise ValueError(
            f"the operator works on {operator.image_shape} images but the prior was trained at "
            f"{prior.image_size}x{prior.image_size}; build the operator with image_size={prior.image_size} or train a "
            "prior at this size."
        )


def _initial(shape, gens, sigma_max):
    return sigma_max * randn(shape, gens)


def _proximal(y, operator, prior, *, steps, lam, sampler, snr, noise_std, gens, callback, bf16, final_projection,
              history):
    _check_prior(prior, operator)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}.")
    denoiser = _Counting(prior, bf16)
    guide = ProximalGuide(operator, y, lam, noise_std, history=history)
    sigmas = get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX)
    x = _initial((y.shape[0], 1, *operator.image_shape), gens, SIGMA_MAX)
    extra = {"snr": snr} if sampler == "pc" else {}
    x = SAMPLERS[sampler](denoiser, x, sigmas, guide=guide, callback=callback, generator=gens, **extra)
    if final_projection and noise_std == 0:
        x = operator.prox(x, y, 1.0)  # Final hard projection onto {A x = y}.
    return x, denoiser.calls


def _dps(y, operator, prior, *, steps, zeta, gens, callback, bf16):
    _check_prior(prior, operator)
    denoiser = _Counting(prior, bf16)
    sigmas = get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX)
    x = _initial((y.shape[0], 1, *operator.image_shape), gens, SIGMA_MAX)
    # zeta is dimensionless: the gradient of ||y - A D(x)||^2 scales with ||A||, so the step is divided by it.
    x = sample_dps(denoiser, x, sigmas, operator, y, zeta=zeta / operator.norm(), callback=callback, generator=gens)
    return x, denoiser.calls


def reconstruct(y: torch.Tensor, operator: LinearOperator, prior: Denoiser | None = None, method: str = "proximal", *,
                steps: int | None = None, lam=None, noise_std: float = 0.0, seed=0, sampler: str | None = None,
                snr: float | None = None, zeta: float | None = None, tv_weight: float | None = None,
                final_projection: bool = True, bf16: bool = True, callback=None, history: list | None = None):
    """Reconstruct images from measurements ``y = A x + eps``; returns ``(x, Record)``.

    Methods: ``"proximal"`` (Song et al. 2022: unconditional prior, proximal step toward ``A x = y_t``), ``"dps"``
    (Chung et al. 2023), and the baselines ``"fbp"`` (CT), ``"zero_filled"`` (MRI), ``"pinv"`` and ``"tv"``.
    Image ``i`` of the batch uses seed ``seed + i`` (or ``seed[i]`` when ``seed`` is a sequence), so a batch
    reproduces its images one by one. ``noise_std`` is
    the standard deviation of the measurement noise: the proximal step becomes noise-aware (see
    :class:`recon.guidance.ProximalGuide`). ``callback`` sees every sampler step; ``history`` (a list) collects every
    proximal step's input and output. The network runs under bf16 autocast unless ``bf16=False``.
    """
    operator._check_measurement(y, "y")
    seeds = list(range(seed, seed + y.shape[0])) if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != y.shape[0]:
        raise ValueError(f"seed must be an int or one seed per image; got {len(seeds)} seeds for {y.shape[0]} images.")
    gens = generators(seeds)
    start = time.perf_counter()
    settings: dict = {"noise_std": noise_std}
    nfe = 0
    if method == "proximal":
        d = DEFAULTS["proximal"]
        settings.update(steps=steps or d["steps"], lam=d["lam"] if lam is None else lam,
                        sampler=sampler or d["sampler"], snr=snr or d["snr"], final_projection=final_projection)
        x, nfe = _proximal(y, operator, prior, noise_std=noise_std, gens=gens, callback=callback, bf16=bf16,
                           history=history,
                           **{k: settings[k] for k in ("steps", "lam", "sampler", "snr", "final_projection")})
    elif method == "dps":
        d = DEFAULTS["dps"]
        settings.update(steps=steps or d["steps"], zeta=zeta or d["zeta"])
        x, nfe = _dps(y, operator, prior, steps=settings["steps"], zeta=settings["zeta"], gens=gens,
                      callback=callback, bf16=bf16)
    elif method == "tv":
        weight = (tv_weight if tv_weight is not None else default_tv_weight(operator)) * operator.norm() ** 2
        settings.update(tv_weight=weight, iters=DEFAULTS["tv"]["iters"])
        x = tv_least_squares(operator, y, weight, iters=settings["iters"])
    elif method == "pinv":
        x = operator.A_pinv(y)
    elif method == "fbp":
        if not hasattr(operator, "fbp"):
            raise ValueError(f"'fbp' is a CT baseline; {type(operator).__name__} has none. Use 'pinv' or 'tv'.")
        x = operator.fbp(y)
    elif method == "zero_filled":
        if not hasattr(operator, "zero_filled"):
            raise ValueError(f"'zero_filled' is an MRI baseline; {type(operator).__name__} has none.")
        x = operator.zero_filled(y)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    seconds = time.perf_counter() - start
    x = x.float()
    return x, Record(method, nfe, seconds, relative_residual(operator, x, y.to(x.dtype) if not y.is_complex() else y),
                     settings)


METHODS = ("proximal", "dps", "fbp", "zero_filled", "pinv", "tv")
