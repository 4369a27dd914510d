"""One call for users and notebooks: ``reconstruct(measurement, prior=prior, method=...)`` (or ``reconstruct(y,
operator, prior, method, noise_std=...)``) returns the image and a record; ``load_prior`` gives the prior."""

from __future__ import annotations

import dataclasses
import math
import time

import torch

from recon._checks import check_noise_std
from recon.methods import METHODS, Problem
from recon.metrics import relative_residual
from recon.models.checkpoints import load_denoiser
from recon.models.denoiser import CountingDenoiser, Denoiser
from recon.operators.base import LinearOperator
from recon.operators.noise import Measurement
from recon.random import generators, seeds_for


@dataclasses.dataclass
class Record:
    """What a reconstruction cost and how well it fits: network evaluations (batched calls), wall time, the
    measurement residual ``||A x - y|| / ||y||`` per image, and every setting the method ran with."""

    method: str
    nfe: int
    seconds: float
    residual: torch.Tensor
    settings: dict


def load_prior(name_or_path: str = "head_ct", device: str = "cpu", precision: str = "auto") -> Denoiser:
    """A shipped prior by name (``"head_ct"``, ``"brain"``) or a checkpoint folder; the checksum is verified.
    ``precision`` is the network's arithmetic: ``"auto"`` (bf16 where the hardware computes it natively, see
    :mod:`recon.models.precision`), ``"fp32"`` or ``"bf16"``."""
    return load_denoiser(name_or_path, device, precision)


def reconstruct(y: Measurement | torch.Tensor, operator: LinearOperator | None = None, prior: Denoiser | None = None,
                method: str = "proximal", *, noise_std: float | None = None, seed=0, callback=None, **options):
    """Reconstruct images from measurements ``y = A x + eps``; returns ``(x, Record)``.

    Args:
        y: a :class:`recon.Measurement` (from :func:`recon.simulate`), which carries its operator and noise level;
            or the tensor ``(B, *operator.measurement_shape)`` of measurements, e.g. ``operator.measure(x, noise_std,
            generator)``, with ``operator`` and ``noise_std`` given.
        operator: the :class:`recon.operators.LinearOperator` that made them (a measurement's own, or omitted).
        prior: a denoiser ``D(x, sigma)`` (``recon.load_prior(...)``); the score-based methods need one, the
            baselines ignore it.
        method: a name in :data:`recon.METHODS`: ``"proximal"`` (Song et al. 2022), ``"proximal_ddrm"`` (the same with
            DDRM's noise-aware rule), ``"dps"`` (Chung et al. 2023), and the baselines ``"fbp"`` (CT),
            ``"zero_filled"`` (MRI), ``"pinv"`` and ``"tv"``; :func:`recon.methods.describe_methods` lists them all
            with their options, including any registered with :func:`recon.register_method`.
        noise_std: standard deviation of the measurement noise in ``y``. A measurement carries it (a value given
            here must agree); for a tensor it defaults to 0, the caller's statement that the data are exact.
            Noise-aware methods use it, and ``"proximal"`` (which treats ``y`` as exact) refuses a value above 0.
        seed: an int (image ``i`` uses ``seed + i``) or one seed per image, so a batch reproduces its images one by one.
        callback: called with a dict at every sampler step (see :mod:`recon.sampling.loops`).
        **options: the method's own options, e.g. ``steps``, ``lam``, ``sampler``, ``snr`` and ``final_projection``
            (``"proximal"``: one last proximal step with the same ``lam``), ``zeta`` (``"dps"``), ``weight`` and
            ``iters`` (``"tv"``). An explicit 0 is honoured; an option the method does not take is an error that lists
            those it does. The record's ``settings`` holds every option as used.

    The network's precision is the prior's (``prior.precision``, ``"auto"`` by default).
    """
    y, operator, noise_std = unpack(y, operator, noise_std)
    operator._check_measurement(y, "y")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)} or register your own with "
                         "recon.register_method.")
    entry = METHODS[method]
    settings = entry.settings(options)
    counted = CountingDenoiser(prior) if prior is not None and entry.needs_prior else prior
    problem = Problem(y, operator, counted, noise_std, generators(seeds_for(seed, y.shape[0])), callback)
    start = time.perf_counter()
    x = entry.function(problem, **settings).float()
    seconds = time.perf_counter() - start
    nfe = (counted.nfe(y.shape[0]) if isinstance(counted, CountingDenoiser) else 0) + problem.report.other_nfe
    residual = relative_residual(operator, x, y if y.is_complex() else y.to(x.dtype))
    return x, Record(method, nfe, seconds, residual, {"noise_std": noise_std, **settings, **problem.report.settings})


def unpack(y, operator, noise_std) -> tuple[torch.Tensor, LinearOperator, float]:
    """``(y, operator, noise_std)`` from a :class:`Measurement` (``operator`` and ``noise_std``, if given, must be
    its own) or from a tensor with its ``operator`` (``noise_std`` None: 0, exact data)."""
    if not isinstance(y, Measurement):
        if operator is None:
            raise TypeError("reconstruct needs the operator that made a tensor y: reconstruct(y, operator, ...); or "
                            "pass a recon.Measurement (from recon.simulate), which carries it.")
        return y, operator, check_noise_std(0.0 if noise_std is None else noise_std)
    if operator is not None and operator is not y.operator:
        raise ValueError(f"the operator given ({operator!r}) is not the measurement's own ({y.operator!r}); omit "
                         "operator= (the measurement carries it) or simulate with this operator.")
    if noise_std is not None and not math.isclose(check_noise_std(noise_std), y.noise_std, rel_tol=1e-6, abs_tol=0.0):
        raise ValueError(f"noise_std={noise_std:g} disagrees with the measurement's noise_std={y.noise_std:g} "
                         f"({y.describe()}); omit noise_std= (the measurement carries it), or pass the tensor to state "
                         "another: reconstruct(m.y, m.operator, ..., noise_std=0) treats noisy data as exact.")
    return y.y, y.operator, y.noise_std
