"""The noise-aware proximal step: the rule of DDRM (Kawar et al. 2022) and SNIPS (Kawar et al. 2021) for noisy data."""

from __future__ import annotations

import torch

from recon._checks import check_noise_std
from recon.guidance.proximal import MeasurementGuide, ProximalGuide
from recon.operators.base import LinearOperator
from recon.random import randn
from recon.sampling.hooks import StepContext


class DDRMProximalGuide(MeasurementGuide):
    """Song et al.'s proximal step with DDRM's treatment of measurement noise (Kawar et al. 2022, eq. 7-8; SNIPS).

    In the singular basis of ``A`` a direction with singular value ``s`` measures ``x`` at noise level
    ``eta = noise_std / s``. While the sampler's ``sigma`` exceeds ``eta`` the direction is set from the data plus
    ``sqrt(sigma^2 - eta^2)`` of fresh noise (so its total noise is ``sigma``, as the prior expects); once
    ``sigma <= eta`` the prior alone moves it. The step is a truncated pseudo-inverse with a moving cut-off
    ``s > noise_std / sigma``, weighted by ``lam``; with ``noise_std = 0`` it is Song et al.'s step (and runs as
    :class:`recon.guidance.ProximalGuide`, so it then needs no spectral decomposition).

    Exactness: for a Gaussian prior whose covariance commutes with ``A^T A`` (row- and null-space parts independent) the
    sampler then draws from the exact posterior (tested). Otherwise it does not: the prior's coupling between measured
    and unmeasured directions is only seen through the network, and the samples are biased (a test records by how much
    on a two-pixel example). With noise, the operator needs a spectral decomposition (``operator.has_spectrum``).

    Args:
        operator: the measurement process.
        y: the measurements ``(B, *measurement_shape)``.
        noise_std: standard deviation of the measurement noise in ``y``.
        lam: a number or a ``(B,)`` tensor in [0, 1].
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, noise_std: float, lam=1.0):
        super().__init__(operator, y, lam)
        self.noise_std = check_noise_std(noise_std)
        self.exact = ProximalGuide(operator, y, lam) if self.noise_std == 0 else None
        if self.exact is None and not operator.has_spectrum:
            raise ValueError(
                f"the DDRM-rule step needs a spectral decomposition, which {type(operator).__name__} has not at this "
                "size (for CT, raise svd_max); or use ProximalGuide, Song et al.'s exact step."
            )

    def before(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if self.exact is not None:
            return self.exact.before(x, ctx)
        op, sigma, var_n = self.operator, ctx.sigma, self.noise_std**2
        z = randn(x.shape, ctx.generator, x.dtype, x.device)

        def gate(w):  # the directions the data still inform: sigma > eta = noise_std / s
            return (sigma**2 * w > var_n).to(torch.float64)

        def spread(w):  # std of the fresh noise per open direction: sqrt(sigma^2 - eta^2)
            return (sigma**2 - var_n / w).clamp_min(0).sqrt() * gate(w)

        target = op.pinv_filtered(self.y, gate) + op.row_filter(z, spread)
        return x + self.lam.to(device=x.device, dtype=x.dtype) * (target - op.row_filter(x, gate))  # Noise-aware proximal step.
