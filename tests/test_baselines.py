"""TV least squares against an independent solver and its own optimality; gradient/divergence adjointness."""

from __future__ import annotations

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


def test_tv_reconstruction_beats_its_start_and_is_near_optimal():
    x = head_ct_phantoms(2, 32, "test", 1).double()
    for op in (ParallelBeamCT(32, 12), CartesianMRI(32, 4, 0.08, "random", seed=0)):
        y = op.A(x)
        rec = tv_least_squares(op, y, weight=1e-3 * op.norm() ** 2, iters=400).double()
        obj = tv_objective(op, rec, y, 1e-3 * op.norm() ** 2)
        start = tv_objective(op, op.A_adjoint(y) / op.norm() ** 2, y, 1e-3 * op.norm() ** 2)
        longer = tv_least_squares(op, y, weight=1e-3 * op.norm() ** 2, iters=1600).double()
        best = tv_objective(op, longer, y, 1e-3 * op.norm() ** 2)
        assert (obj < start).all()
        assert ((obj - best) / best < 0.02).all()
