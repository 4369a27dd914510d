"""Every measurement operator, in small sizes, with the tolerance its pseudo-inverse is exact to."""

from __future__ import annotations

import torch

from recon.operators import CartesianMRI, GaussianCS, LinearOperator, MatrixOperator, ParallelBeamCT


class CGOnlyCT(ParallelBeamCT):
    """CT whose Gram matrix is 'too large', so ``A_pinv`` takes the CGLS path (exercises the fallback)."""

    def __init__(self, image_size, n_views):
        super().__init__(image_size, n_views, svd_max=1)


# name -> (factory, pinv tolerance). Pinv tolerances: spectral paths are exact to rcond, CG to cg_tol.
OPERATORS = {
    "ct_8_views": (lambda: ParallelBeamCT(16, 8), 1e-5),
    "ct_23_views_odd_size": (lambda: ParallelBeamCT(15, 23), 1e-5),
    "ct_overdetermined": (lambda: ParallelBeamCT(12, 30), 1e-5),
    "ct_cg_fallback": (lambda: CGOnlyCT(12, 6), 1e-5),
    "ct_limited_angle": (lambda: ParallelBeamCT(16, 8, arc=90), 1e-5),
    "mri_random_4x": (lambda: CartesianMRI(16, 4, 0.125, "random", seed=1), 1e-10),
    "mri_equispaced_8x": (lambda: CartesianMRI(17, 8, 0.0, "equispaced", seed=2), 1e-10),
    "mri_variable_density_4x": (lambda: CartesianMRI(16, 4, 0.08, "variable_density", seed=3), 1e-10),
    "mri_rows_4x": (lambda: CartesianMRI(16, 4, 0.125, "random", seed=1, orientation="rows"), 1e-10),
    "gaussian_m10": (lambda: GaussianCS(8, 10, seed=0), 1e-8),
    "gaussian_m25": (lambda: GaussianCS(8, 25, seed=1), 1e-8),
    "matrix_rank_deficient": (lambda: MatrixOperator(torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 1.0, 0]]), (2, 2)),
                              1e-8),
}


def make(name: str) -> LinearOperator:
    return OPERATORS[name][0]()


def random_image(op: LinearOperator, batch: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, 1, *op.image_shape), generator=g, dtype=torch.float64)


def random_measurement(op: LinearOperator, batch: int = 3, seed: int = 1) -> torch.Tensor:
    """A generic element of the measurement space (not in the range of A), restricted to acquired components."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn((batch, *op.measurement_shape), generator=g, dtype=torch.float64)
    if op.measurement_is_complex:
        y = torch.complex(y, torch.randn(y.shape, generator=g, dtype=torch.float64))
    return op.acquired(y)


def inner(a: torch.Tensor, b: torch.Tensor) -> float:
    """Real inner product ``Re(a^H b)`` over the whole batch."""
    return float((a.conj() * b).real.sum() if a.is_complex() else (a * b).sum())
