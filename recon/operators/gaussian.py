"""A generic compressed-sensing operator: a dense Gaussian matrix, full row rank with probability one."""

from __future__ import annotations

import torch

from recon._checks import check_positive_int
from recon.operators.base import GramSpectrumMixin, LinearOperator
from recon.operators.spectral import GramSpectrum


def gaussian_matrix(m: int, n: int, seed: int) -> torch.Tensor:
    """``m x n`` matrix with i.i.d. ``N(0, 1/m)`` entries (so ``E||A x||^2 = ||x||^2``), float64."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g, dtype=torch.float64) / m**0.5


class GaussianCS(GramSpectrumMixin, LinearOperator):
    """Compressed sensing ``y = A x`` with a Gaussian ``A`` of ``n_measurements`` rows: the post's hospitals.

    Each hospital (seed) has its own ``A``; ``m = 10`` and ``m = 25`` are the post's example. Measurements have shape
    ``(B, m)``. ``A_pinv`` is exact, from a cached eigendecomposition of ``A A^T``.

    >>> import torch
    >>> op = GaussianCS(16, n_measurements=10, seed=1)
    >>> op.A(torch.zeros(3, 1, 16, 16)).shape
    torch.Size([3, 10])
    """

    def __init__(self, image_size: int, n_measurements: int, seed: int = 0):
        check_positive_int(image_size, "image_size", 2)
        check_positive_int(n_measurements, "n_measurements")
        n = image_size * image_size
        if n_measurements > n:
            raise ValueError(f"n_measurements={n_measurements} exceeds the {n} pixels; use at most {n}.")
        self.image_size = image_size
        self.seed = seed
        self.image_shape = (image_size, image_size)
        self.measurement_shape = (n_measurements,)
        self.matrix = gaussian_matrix(n_measurements, n, seed)
        self._matrix32 = self.matrix.float()
        self.spectrum = GramSpectrum((self.matrix @ self.matrix.T).numpy(), row_space=True, rcond=1e-7)

    def _weights(self, dtype):
        return self.matrix if dtype == torch.float64 else self._matrix32.to(dtype)

    def _A(self, x):
        return x.reshape(x.shape[0], -1) @ self._weights(x.dtype).T

    def _A_adjoint(self, y):
        return (y @ self._weights(y.dtype)).reshape(y.shape[0], 1, *self.image_shape)

    def __repr__(self) -> str:
        return f"GaussianCS(image_size={self.image_size}, n_measurements={self.measurement_shape[0]}, seed={self.seed})"
