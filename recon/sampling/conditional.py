"""The conditional measurement process of Song et al. (2022): ``y_t = alpha(t) y + beta(t) A z``."""

from __future__ import annotations

import torch

from recon._checks import check_finite
from recon.operators.base import LinearOperator
from recon.random import Generators, randn


def y_t(y: torch.Tensor, operator: LinearOperator, schedule, t, generator: Generators = None) -> torch.Tensor:
    """Sample ``y_t = alpha(t) y + beta(t) A z`` with ``z ~ N(0, I)`` (Song et al. 2022, Sec. 3.2).

    If ``x_t = alpha(t) x_0 + beta(t) z`` then ``A x_t = alpha(t) A x_0 + beta(t) A z``: ``y_t`` is a draw of the
    measurement of ``x_t`` given ``y = A x_0``. ``t`` is a number or a ``(B,)`` tensor in the schedule's range (for
    :class:`recon.sampling.schedules.SigmaSchedule`, the noise level itself). ``z`` is image-shaped, in ``y``'s real
    dtype, drawn from ``generator`` (one, or one per sample), a fresh draw on every call.
    """
    operator._check_measurement(y, "y")
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.dim() == 1 and t.shape[0] != y.shape[0]:
        raise ValueError(f"t must be a number or a (B,) tensor with B = {y.shape[0]}; got shape {tuple(t.shape)}.")
    real = y.real.dtype if y.is_complex() else y.dtype
    shape = (-1,) + (1,) * (y.dim() - 1)
    alpha = schedule.alpha(t).to(device=y.device, dtype=real).reshape(shape)
    beta = schedule.beta(t).to(device=y.device, dtype=real).reshape(shape)
    z = randn((y.shape[0], 1, *operator.image_shape), generator, real, y.device)
    out = alpha * y + beta * operator.A(z)
    check_finite(out, "y_t")
    return out
