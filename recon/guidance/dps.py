"""Diffusion posterior sampling (Chung et al. 2023) as a guide: a likelihood gradient through the network."""

from __future__ import annotations

import torch

from recon.operators.base import LinearOperator
from recon.sampling.hooks import Guide, StepContext


class DPSGuide(Guide):
    """DPS (Chung et al. 2023, Alg. 1, in VE form): after every sampler step, ``x_next -= zeta_i grad_x ||y - A D(x)||^2``
    with ``zeta_i = zeta / ||y - A D(x)||``, differentiating through the network at the step's evaluation.

    With Euler–Maruyama this is Chung et al.'s algorithm exactly; with Heun the gradient is taken at the first
    evaluation and added after the second-order step. ``zeta = 0`` leaves the prior's sampler unchanged.

    Args:
        operator: the measurement process.
        y: the measurements ``(B, *measurement_shape)``.
        zeta: the step size, in the units of ``x`` per unit relative residual (>= 0).
    """

    needs_grad = True

    def __init__(self, operator: LinearOperator, y: torch.Tensor, zeta: float = 1.0):
        operator._check_measurement(y, "y")
        if not zeta >= 0:
            raise ValueError(f"zeta must be >= 0 (0 turns the guidance off); got {zeta}.")
        self.operator, self.y, self.zeta = operator, y, float(zeta)

    def correction(self, x: torch.Tensor, denoised: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        residual = (self.y - self.operator.A(denoised)).flatten(1)
        grad = torch.autograd.grad((residual.abs() ** 2).sum(), x, retain_graph=True)[0]
        norm = residual.detach().abs().norm(dim=1).clamp_min(1e-12)
        return -(self.zeta / norm).reshape(-1, *([1] * (x.dim() - 1))) * grad  # Measurement-gradient step.
