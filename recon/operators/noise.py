"""Measurements and their noise: :class:`Measurement` (the data ``y`` with the operator that made them and the noise
model they carry) and :func:`simulate`, which makes one; and the noise models with a physical meaning: low-dose CT
photon counts, MRI thermal noise at a stated SNR, and the plain relative Gaussian noise of the first chapters. Each
model turns clean measurements into noisy ones and says which noise standard deviation a noise-aware method should
assume; the measurement carries that value, so no method runs noise-free maths on noisy data by omission
(deepinv's ``physics.noise_model`` plays this part there)."""

from __future__ import annotations

import dataclasses
import math

import torch

from recon._checks import check_noise_std
from recon.operators.base import LinearOperator, standard_noise


@dataclasses.dataclass(frozen=True)
class RelativeGaussian:
    """White Gaussian noise on every acquired real component, ``level`` times the RMS of the clean acquired data."""

    level: float = 0.01

    def describe(self) -> str:
        return f"Gaussian, {100 * self.level:g} % of the data's RMS"

    def __call__(self, operator: LinearOperator, y: torch.Tensor, images: torch.Tensor, generator: torch.Generator):
        std = relative_noise_std(operator, y, self.level)
        return y + std * operator.acquired(standard_noise(y, generator)), std


@dataclasses.dataclass(frozen=True)
class PoissonCT:
    """Low-dose CT: ``flux`` photons enter each detector bin per view, ``Poisson(flux exp(-p))`` arrive, and the
    log transform ``-log(counts / flux)`` estimates the optical depth ``p`` (a zero count is read as half a photon).

    The image values are attenuation relative to ``mu_ref_per_mm`` (0.038/mm: tissue at 0.5 is water at about
    70 keV, the skull at 1.0 is dense bone) on a field of view of ``fov_mm``, so a line integral ``y`` in pixel units
    has optical depth ``y * mu_ref_per_mm * fov_mm / N``; through the middle of a head that is about 5. The effective
    noise standard deviation (for noise-aware methods) is the RMS over rays of the delta-method standard deviation
    ``1 / sqrt(flux exp(-p))``, converted back to pixel units.
    """

    flux: float = 1e4
    mu_ref_per_mm: float = 0.038
    fov_mm: float = 250.0

    def describe(self) -> str:
        return f"Poisson, {self.flux:.0e} photons per detector bin and view"

    def __call__(self, operator: LinearOperator, y: torch.Tensor, images: torch.Tensor, generator: torch.Generator):
        scale = self.mu_ref_per_mm * self.fov_mm / operator.image_shape[-1]  # pixel units -> optical depth
        expected = self.flux * torch.exp(-scale * y.double())
        counts = torch.poisson(expected, generator=generator).clamp_min(0.5)
        noisy = (-torch.log(counts / self.flux) / scale).to(y.dtype)
        std = float((1.0 / expected).mean().sqrt()) / scale
        return noisy, std


@dataclasses.dataclass(frozen=True)
class ComplexGaussianMRI:
    """Thermal MRI noise: complex white Gaussian noise in k-space with ``snr`` = the image's mean foreground intensity
    (pixels above 10 % of its maximum) over the noise standard deviation per real component, which with an
    orthonormal FFT is also the noise of each pixel of a fully sampled image."""

    snr: float = 30.0

    def describe(self) -> str:
        return f"complex Gaussian, SNR {self.snr:g}"

    def __call__(self, operator: LinearOperator, y: torch.Tensor, images: torch.Tensor, generator: torch.Generator):
        flat = images.flatten(1)
        foreground = flat > 0.1 * flat.max(dim=1, keepdim=True).values
        std = float(((flat * foreground).sum(1) / foreground.sum(1)).mean()) / self.snr
        return y + std * operator.acquired(standard_noise(y, generator)), std


def relative_noise_std(operator: LinearOperator, y: torch.Tensor, level: float) -> float:
    """``level`` times the RMS of the acquired components of clean measurements ``y`` (complex ones count their real
    and imaginary parts)."""
    acquired = operator.acquired(torch.ones_like(y)) != 0
    values = torch.cat([y.real[acquired], y.imag[acquired]]) if y.is_complex() else y[acquired]
    return float(level * values.pow(2).mean().sqrt())


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Measurements ``y = A x + eps`` with what a method must know about them.

    Args:
        y: the data ``(B, *operator.measurement_shape)``.
        operator: the :class:`recon.operators.LinearOperator` that made them.
        noise: the noise model (:class:`PoissonCT`, :class:`ComplexGaussianMRI`, :class:`RelativeGaussian`, or any
            object with ``describe()``), or None: noise-free.
        noise_std: the standard deviation a noise-aware method should assume (0.0 when noise-free).

    :func:`recon.reconstruct` takes one in place of ``(y, operator, noise_std=...)``:

    >>> import recon
    >>> op = recon.ParallelBeamCT(16, 6)
    >>> m = recon.simulate(op, recon.data.head_ct_phantoms(2, 16, "test", 0), RelativeGaussian(0.01), seed=0)
    >>> m
    Measurement(2 x (1, 6, 16) from ParallelBeamCT, Gaussian, 1 % of the data's RMS, noise_std=0.043)
    >>> x, record = recon.reconstruct(m, method="tv", iters=5)
    >>> record.settings["noise_std"] == m.noise_std
    True
    """

    y: torch.Tensor
    operator: LinearOperator
    noise: object | None = None
    noise_std: float = 0.0

    def __post_init__(self):
        self.operator._check_measurement(self.y, "Measurement.y")
        object.__setattr__(self, "noise_std", check_noise_std(self.noise_std))
        if self.noise is None and self.noise_std > 0:
            raise ValueError(f"noise=None means noise-free data, but noise_std={self.noise_std:g}; pass the noise "
                             "model (e.g. RelativeGaussian(0.01)), or give reconstruct the tensor y with noise_std=.")

    def to(self, device) -> Measurement:
        """The same measurement with ``y`` on ``device`` (the operator is shared, not copied)."""
        return dataclasses.replace(self, y=self.y.to(device))

    def describe(self) -> str:
        """One line: how many measurements, of which operator, under which noise."""
        noise = "noise-free" if self.noise is None else f"{self.noise.describe()}, noise_std={self.noise_std:.3g}"
        shape = tuple(self.y.shape[1:])
        return f"{self.y.shape[0]} x {shape} from {type(self.operator).__name__}, {noise}"

    def __repr__(self) -> str:
        return f"Measurement({self.describe()})"


def simulate(operator: LinearOperator, images: torch.Tensor, noise=None, seed: int = 0,
             fine: torch.Tensor | None = None) -> Measurement:
    """The :class:`Measurement` of ``images`` under ``noise`` (None: noise-free; ``seed`` seeds its draw): off the
    reconstruction grid from ``fine`` (a finer rendering, :meth:`LinearOperator.A_fine`) when given, else on it (the
    inverse crime)."""
    clean = operator.A(images) if fine is None else operator.A_fine(fine.to(images.dtype))
    if noise is None:
        return Measurement(clean, operator)
    if not math.isfinite(float(clean.abs().max())):
        raise ValueError("the clean measurements are not finite; check the images.")
    y, noise_std = noise(operator, clean, images, torch.Generator().manual_seed(seed))
    return Measurement(y, operator, noise, noise_std)
