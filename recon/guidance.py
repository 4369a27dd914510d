"""The proximal step of Song et al. (2022) as a guide for the samplers, exact and noise-aware."""

from __future__ import annotations

import torch

from recon._checks import check_lam, check_noise_std
from recon.operators.base import LinearOperator
from recon.random import Generators, randn


class ProximalGuide:
    """``x' = k(x, y_t, lam) = x + lam A^+(y_t - A x)`` with a fresh ``y_t = y + sigma A z`` at every call
    (Song et al. 2022, Sec. 3.2, in the VE form the samplers use).

    With measurement noise (``noise_std > 0``) the exact ``A^+`` would inject ``A^+ eps``, amplified along small
    singular values. The noise-aware step treats each singular direction of ``A`` (singular value ``s``) as a
    measurement of ``x`` at noise level ``eta = noise_std / s``: while the sampler's ``sigma`` exceeds ``eta`` the
    direction is set from the data plus ``sqrt(sigma^2 - eta^2)`` of fresh noise (so its total noise is ``sigma``);
    once ``sigma <= eta`` the prior alone moves it. This is a truncated pseudo-inverse with cut-off
    ``s > noise_std / sigma``; for a Gaussian prior it samples the exact posterior (tested). It needs an operator
    with a spectral decomposition (``operator.has_spectrum``).

    Args:
        operator: the measurement process.
        y: the measurements ``(B, *measurement_shape)``.
        lam: a number or a ``(B,)`` tensor in [0, 1].
        noise_std: standard deviation of the measurement noise in ``y`` (0: noise-free, the paper's step).
    """

    def __init__(self, operator: LinearOperator, y: torch.Tensor, lam=1.0, noise_std: float = 0.0,
                 history: list | None = None):
        operator._check_measurement(y, "y")
        self.operator, self.y = operator, y
        self.history = history  # if a list, every call appends {sigma, x, x_proj} (for the process figures)
        self.lam = check_lam(lam, y.shape[0], torch.zeros((y.shape[0], 1, 1, 1)))
        self.noise_std = check_noise_std(noise_std)
        if self.noise_std > 0 and not operator.has_spectrum:
            raise ValueError(
                f"the noise-aware step needs a spectral decomposition, which {type(operator).__name__} has not at this "
                "size (for CT, raise svd_max); or pass noise_std=0 for the exact step."
            )

    def target(self, sigma: float, generator: Generators, like: torch.Tensor) -> tuple[torch.Tensor, object]:
        """The point the step moves toward in the row space, and the gate of the directions it moves."""
        op = self.operator
        z = randn(like.shape, generator, like.dtype, like.device)
        if self.noise_std == 0:
            y_t = self.y + sigma * op.A(z)  # Song et al.'s y_t in VE form.
            return op.A_pinv(y_t), None
        var_n = self.noise_std**2

        def gate(w):
            return (sigma**2 * w > var_n).to(torch.float64)

        def spread(w):  # std of the fresh noise per direction: sqrt(sigma^2 - eta^2) on the open directions
            return (sigma**2 - var_n / w).clamp_min(0).sqrt() * gate(w)

        return op.pinv_filtered(self.y, gate) + op.row_filter(z, spread), gate

    def __call__(self, x: torch.Tensor, sigma: float, generator: Generators = None) -> torch.Tensor:
        op = self.operator
        target, gate = self.target(sigma, generator, x)
        lam = self.lam.to(x.dtype)
        if gate is None:
            x_proj = x + lam * (target - op.A_pinv(op.A(x)))  # x + lam A^+(y_t - A x)
        else:
            x_proj = x + lam * (target - op.row_filter(x, gate))  # the same, on the directions the data still informs
        if self.history is not None:
            self.history.append({"sigma": sigma, "x": x, "x_proj": x_proj, "A_target": op.A(target)})
        return x_proj
