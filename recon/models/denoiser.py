"""Denoisers ``D(x, sigma) -> x0_hat`` in image units: the learned one owns its preconditioning and its precision."""

from __future__ import annotations

import torch
from torch import nn

from recon._checks import check_finite
from recon.models.precision import autocast, check_precision
from recon.sampling.steps import score_from_denoised


def sigma_batch(sigma, x: torch.Tensor) -> torch.Tensor:
    """``sigma`` (a number or a ``(B,)`` tensor) as a validated ``(B,)`` tensor on ``x``'s device."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32 if x.dtype == torch.bfloat16 else x.dtype, device=x.device)
    if sigma.dim() == 0:
        sigma = sigma.expand(x.shape[0])
    if sigma.shape != (x.shape[0],):
        raise ValueError(f"sigma must be a number or a (B,) tensor with B = {x.shape[0]}; got {tuple(sigma.shape)}.")
    if not torch.isfinite(sigma).all() or (sigma <= 0).any():
        raise ValueError(f"sigma must be finite and > 0; got min {float(sigma.min())}.")
    return sigma


class Denoiser:
    """The contract every sampler uses: ``D(x, sigma)`` estimates the clean image from ``x = x0 + sigma z``.

    ``sigma_min``/``sigma_max`` bound the noise levels the denoiser was built for; samplers draw their schedules
    inside them. A consistency model keeps the same contract (its output is the end of the trajectory through ``x``).
    """

    sigma_min: float
    sigma_max: float
    image_size: int | None = None

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        raise NotImplementedError

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """Score of the noised marginal, :func:`score_from_denoised` of this denoiser's estimate."""
        return score_from_denoised(x, self(x, sigma), sigma_batch(sigma, x))


class CountingDenoiser(Denoiser):
    """Counts the images a wrapped denoiser evaluates; the reconstruction record's NFE is
    :meth:`nfe` (evaluations per reconstructed image, so a batched call over several grid points per image counts
    each point)."""

    def __init__(self, denoiser: Denoiser):
        self.denoiser, self.images = denoiser, 0
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max
        self.image_size = denoiser.image_size

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        self.images += x.shape[0]
        return self.denoiser(x, sigma)

    def nfe(self, batch: int) -> int:
        """Network evaluations per image for ``batch`` reconstructed images."""
        return -(-self.images // batch)


class EDMDenoiser(Denoiser, nn.Module):
    """EDM preconditioning (Karras et al. 2022, Table 1, "Ours") around a network ``F(x, c_noise)``.

    Images live in [0, 1]; internally they are mapped to [-1, 1] (``x -> 2x - 1``, ``sigma -> 2 sigma``), where
    ``sigma_data = 0.5``:  ``D = c_skip x + c_out F(c_in x, c_noise)`` with ``c_skip = sd^2 / (s^2 + sd^2)``,
    ``c_out = s sd / sqrt(s^2 + sd^2)``, ``c_in = 1 / sqrt(s^2 + sd^2)``, ``c_noise = ln(s) / 4``.

    The network runs under :mod:`recon.models.precision`'s choice for ``x``'s device (``precision="auto"``: bf16 where
    the hardware computes it natively, else fp32); the preconditioning and the output stay in ``x``'s dtype.

    Args:
        net: a module ``F(x, c_noise)`` on ``(B, 1, H, W)``.
        image_size: the size it was trained at; other sizes are refused.
        sigma_min, sigma_max: noise range in image units.
        sigma_data: data standard deviation in the [-1, 1] space.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``; settable later (``prior.precision = "fp32"``).
    """

    def __init__(self, net: nn.Module, image_size: int, sigma_min: float = 0.002, sigma_max: float = 40.0,
                 sigma_data: float = 0.5, precision: str = "auto"):
        nn.Module.__init__(self)
        self.net = net
        self.image_size = image_size
        self.sigma_min, self.sigma_max, self.sigma_data = sigma_min, sigma_max, sigma_data
        self.precision = check_precision(precision)

    def precondition(self, sigma: torch.Tensor):
        """``c_skip, c_out, c_in, c_noise`` for image-unit ``sigma`` (B,), in the [-1, 1] space."""
        s, sd = 2 * sigma, self.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        c_noise = s.log() / 4
        return c_skip, c_out, c_in, c_noise

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"this denoiser was trained on {self.image_size}x{self.image_size} images (B, 1, "
                f"{self.image_size}, {self.image_size}); got {tuple(x.shape)}. Resize the images or train a prior "
                "at this size with `python -m recon.train --size ...`."
            )
        check_finite(x, "denoiser input x")

    def forward(self, x: torch.Tensor, sigma, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``D(x, sigma)``; a class-conditional network also takes ``labels`` (B,) (None: unconditional)."""
        self.check_input(x)
        sigma = sigma_batch(sigma, x)
        c_skip, c_out, c_in, c_noise = (c.reshape(-1, 1, 1, 1) for c in self.precondition(sigma))
        xs = 2 * x - 1
        dtype = next(self.net.parameters()).dtype
        extra = {} if labels is None else {"labels": labels}
        with autocast(self.precision, x.device):
            F = self.net((c_in * xs).to(dtype), c_noise.reshape(-1).to(dtype), **extra)
        return (c_skip * xs + c_out * F.to(x.dtype) + 1) / 2

    __call__ = nn.Module.__call__


class GaussianDenoiser(Denoiser):
    """The exact denoiser of a Gaussian prior ``x0 ~ N(mean, cov)``: ``D = mean + cov (cov + sigma^2 I)^-1 (x - mean)``.

    With it a sampler's output distribution is known in closed form, which the tests use.
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, sigma_min: float = 1e-3, sigma_max: float = 100.0):
        self.mean = mean.double()
        self.cov = cov.double()
        self.shape = tuple(mean.shape)
        self.image_size = self.shape[-1]
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._evals, self._evecs = torch.linalg.eigh(self.cov)

    def __call__(self, x, sigma):
        sigma = sigma_batch(sigma, x.double())
        d = (x.double() - self.mean).reshape(x.shape[0], -1) @ self._evecs
        gain = self._evals / (self._evals + sigma[:, None] ** 2)
        return (self.mean.reshape(1, -1) + (d * gain) @ self._evecs.T).reshape(x.shape).to(x.dtype)


class ClassConditioned(Denoiser, nn.Module):
    """A class-conditional :class:`EDMDenoiser` held at one label: ``D(x, sigma) = base(x, sigma, labels=label)``,
    or with ``guidance = w > 0`` classifier-free guidance (Ho & Salimans 2022) in the denoiser's terms,
    ``D = D_u + (1 + w) (D_c - D_u)`` with ``D_u`` the network's "no label" entry (which label dropout trained): two
    network evaluations per call, batched as one. It keeps the denoiser contract, so every sampler and guide takes it
    as it takes an unconditional prior."""

    def __init__(self, base: EDMDenoiser, label: int, guidance: float = 0.0):
        nn.Module.__init__(self)
        classes = getattr(base.net, "classes", 0)
        if not classes:
            raise ValueError("this prior is unconditional; class labels need a prior trained with --classes N.")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < classes:
            raise ValueError(f"label must be an integer in [0, {classes}); got {label!r}.")
        if not guidance >= 0:
            raise ValueError(f"guidance must be >= 0 (0: the conditional denoiser alone); got {guidance}.")
        self.base, self.label, self.guidance, self.classes = base, label, float(guidance), classes
        self.sigma_min, self.sigma_max, self.image_size = base.sigma_min, base.sigma_max, base.image_size

    @property
    def nfe_per_call(self) -> int:
        return 2 if self.guidance > 0 else 1

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        labels = torch.full((x.shape[0],), self.label, dtype=torch.int64, device=x.device)
        if self.guidance == 0:
            return self.base(x, sigma, labels=labels)
        sigma = sigma_batch(sigma, x)
        both = self.base(torch.cat([x, x]), torch.cat([sigma, sigma]),
                         labels=torch.cat([labels, torch.full_like(labels, self.classes)]))
        conditional, unconditional = both.chunk(2)
        return unconditional + (1 + self.guidance) * (conditional - unconditional)

    __call__ = nn.Module.__call__


def denoising_psnr(denoiser: Denoiser, images: torch.Tensor, sigma: float, seed: int = 0,
                   batch: int = 64) -> torch.Tensor:
    """PSNR (dB) per image of ``D(x + sigma z, sigma)`` against ``x``, with ``z`` drawn from ``seed`` (the same draws
    for every denoiser given the same images and seed): a prior's denoising quality, the measure of its
    generalisation gap when ``images`` are training draws against held-out ones.

    >>> prior = GaussianDenoiser(torch.full((1, 8, 8), 0.5), 1e-6 * torch.eye(64))  # nearly one image
    >>> bool((denoising_psnr(prior, torch.full((2, 1, 8, 8), 0.5), sigma=0.1) > 40).all())
    True
    """
    from recon.metrics import psnr

    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch]
            out.append(denoiser(x + sigma * noise[start:start + batch], sigma).float().cpu())
    return psnr(torch.cat(out).clamp(0, 1), images)
