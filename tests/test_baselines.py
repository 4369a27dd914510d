"""TV least squares against an independent solver and its own optimality; gradient/divergence adjointness."""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch
from skimage.restoration import denoise_tv_chambolle

from recon.baselines import divergence, gradient, tv_least_squares, tv_objective
from recon.data import head_ct_phantoms
from recon.operators import CartesianMRI, LinearOperator, ParallelBeamCT


class Identity(LinearOperator):
    def __init__(self, size):
        self.image_shape = (size, size)
        self.measurement_shape = (1, size, size)

    def _A(self, x):
        return x

    def _A_adjoint(self, y):
        return y


def test_divergence_is_minus_the_adjoint_of_gradient():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 9, 7, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, 9, 7, generator=g, dtype=torch.float64)
    assert abs(float((gradient(x) * v).sum() + (x * divergence(v)).sum())) < 1e-10


def test_tv_denoising_matches_scikit_image():
    """With A = I the problem is ROF denoising, which scikit-image solves by Chambolle's (2004) dual projection."""
    clean = head_ct_phantoms(2, 32, "test", 0).double()
    noisy = clean + 0.08 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = tv_least_squares(Identity(32), noisy, weight=0.1, iters=2000).double()
    for i in range(2):
        ref = torch.from_numpy(denoise_tv_chambolle(noisy[i, 0].numpy(), weight=0.1, eps=1e-8, max_num_iter=5000))
        assert (ours[i, 0] - ref).abs().max() < 5e-3


def tv_reference(op, y: torch.Tensor, weight: float, eps: float = 1e-10) -> float:
    """The minimum of the same objective by an independent route: the operator as a dense matrix, isotropic TV
    (forward differences, zero at the last row/column) smoothed by ``eps`` inside the square root, and scipy's
    L-BFGS-B on it, with the exact objective evaluated at its solution."""
    n, shape = op.n_pixels, op.image_shape
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, *shape)
    A = op.A(basis).reshape(n, -1).T.numpy()  # (m, n), complex for MRI: stacked as real and imaginary rows
    b = y.reshape(-1).numpy()
    if np.iscomplexobj(A):
        A, b = np.vstack([A.real, A.imag]), np.concatenate([b.real, b.imag])
    A, At = np.ascontiguousarray(A), np.ascontiguousarray(A.T)

    def differences(v):
        img = v.reshape(shape)
        gy, gx = np.zeros(shape), np.zeros(shape)
        gy[:-1], gx[:, :-1] = img[1:] - img[:-1], img[:, 1:] - img[:, :-1]
        return gy, gx

    def objective(v):
        r = A @ v - b
        gy, gx = differences(v)
        norm = np.sqrt(gy**2 + gx**2 + eps)
        py, px = gy / norm, gx / norm  # d TV / d (gy, gx); the adjoint of the differences below
        div = np.zeros(shape)
        div[1:] += py[:-1]
        div[:-1] -= py[:-1]
        div[:, 1:] += px[:, :-1]
        div[:, :-1] -= px[:, :-1]
        grad = At @ r + weight * div.reshape(-1)
        return 0.5 * np.sum(r**2) + weight * norm.sum(), grad

    start = At @ b / op.norm() ** 2
    result = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                                     options={"maxiter": 50000, "maxfun": 100000, "ftol": 1e-14, "gtol": 1e-11})
    return float(tv_objective(op, torch.from_numpy(result.x).reshape(1, 1, *shape), y, weight))


def test_tv_reconstruction_reaches_the_minimum_an_independent_solver_finds():
    x = head_ct_phantoms(1, 16, "test", 1).double()
    for op in (ParallelBeamCT(16, 8), CartesianMRI(16, 4, 0.125, "random", seed=0)):
        y = op.A(x)
        weight = 1e-3 * op.norm() ** 2
        ours = float(tv_objective(op, tv_least_squares(op, y, weight, iters=400).double(), y, weight))
        start = float(tv_objective(op, op.A_adjoint(y) / op.norm() ** 2, y, weight))
        reference = tv_reference(op, y, weight)
        assert ours < start and abs(ours - reference) / reference < 1e-3, (type(op).__name__, ours, reference)
