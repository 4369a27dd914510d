"""Measurement operators ``y = A x + eps`` with ``A``, ``A_adjoint``, ``A_pinv`` and ``prox``."""

from recon.operators.base import LinearOperator, cgls
from recon.operators.gaussian import GaussianCS, MatrixOperator, gaussian_matrix
from recon.operators.masks import MASK_PATTERNS, cartesian_mask
from recon.operators.mri import CartesianMRI
from recon.operators.noise import ComplexGaussianMRI, PoissonCT, RelativeGaussian, simulate
from recon.operators.radon import ParallelBeamCT, parallel_beam_angles, radon_matrix, ramp_filter

__all__ = [
    "MASK_PATTERNS",
    "CartesianMRI",
    "ComplexGaussianMRI",
    "GaussianCS",
    "LinearOperator",
    "MatrixOperator",
    "ParallelBeamCT",
    "PoissonCT",
    "RelativeGaussian",
    "cartesian_mask",
    "cgls",
    "gaussian_matrix",
    "parallel_beam_angles",
    "radon_matrix",
    "ramp_filter",
    "simulate",
]
