"""Song et al.'s (2022) proximal step, and a projection of the clean estimate (the DDNM-style hard constraint)."""

from __future__ import annotations

import torch

from recon._checks import check_lam
from recon.operators.base import LinearOperator
from recon.sampling.conditional import y_t
from recon.sampling.hooks import Guide, StepContext
from recon.sampling.schedules import SigmaSchedule

SIGMA_FORM = SigmaSchedule()


class MeasurementGuide(Guide):
    """A guide that holds an operator, its measurements ``y`` and a weight ``lam`` (a number or a ``(B,)`` tensor in
    [0, 1], checked)."""

    def __init__(self, operator: LinearOperator, y: torch.Tensor, lam=1.0):
        operator._check_measurement(y, "y")
        self.operator, self.y = operator, y
        self.lam = check_lam(lam, y.shape[0], torch.zeros((y.shape[0], 1, 1, 1)))


class ProximalGuide(MeasurementGuide):
    """``x' = x + lam A^+(y_t - A x)`` before every network evaluation, with a fresh ``y_t = y + sigma A z``
    (Song et al. 2022, Sec. 3.2, eq. 11, in the VE form the samplers use): :meth:`LinearOperator.prox` toward
    :func:`recon.sampling.conditional.y_t`.

    The step treats ``y`` as exact. With measurement noise it pins the row-space part of ``x`` to ``A^+ y``, noise
    included; :class:`recon.guidance.ddrm.DDRMProximalGuide` is the noise-aware alternative.

    Args:
        operator: the measurement process.
        y: the measurements ``(B, *measurement_shape)``.
        lam: a number or a ``(B,)`` tensor in [0, 1].

    >>> import torch, recon
    >>> op = recon.GaussianCS(4, n_measurements=6, seed=0)
    >>> guide = ProximalGuide(op, op.A(torch.rand(2, 1, 4, 4)), lam=1.0)
    >>> x = guide.before(torch.zeros(2, 1, 4, 4), StepContext(0, 1e-9, 0.0, torch.Generator().manual_seed(0)))
    >>> bool((op.A(x) - guide.y).abs().max() < 1e-5)
    True
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, lam=1.0, rcond: float | None = None):
        super().__init__(operator, y, lam)
        self.rcond = rcond  # None: the operator's pseudo-inverse; a number: truncated there (LinearOperator.prox)

    def before(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        target = y_t(self.y, self.operator, SIGMA_FORM, ctx.sigma, ctx.generator)
        # Proximal step toward A x = y_t.
        return self.operator.prox(x, target, self.lam.reshape(-1).to(x.dtype), rcond=self.rcond)


class EstimateProjectionGuide(MeasurementGuide):
    """``D' = D + lam A^+(y - A D)``: the clean estimate moved onto the measurements after every network evaluation
    (the range-null-space step of DDNM, Wang et al. 2023; with ``lam = 1``, the replacement of known components
    that consistency models use for zero-shot editing, Song et al. 2023). Noise-free data."""

    def after(self, x, denoised, ctx):
        return self.operator.prox(denoised, self.y, self.lam.reshape(-1).to(denoised.dtype))


class ReplacementGuide(MeasurementGuide):
    """The consistency-model paper's zero-shot editing step (Song et al. 2023, App. D): the clean estimate clipped to
    the image range [0, 1], then its measured components replaced by the data (``A^+`` projection, ``lam = 1``).
    Noise-free data."""

    def after(self, x, denoised, ctx):
        return self.operator.prox(denoised.clamp(0, 1), self.y, 1.0)
