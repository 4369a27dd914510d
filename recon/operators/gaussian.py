"""Dense-matrix operators: any explicit matrix, and the Gaussian compressed-sensing matrices of the post's hospitals."""

from __future__ import annotations

import torch

from recon._checks import check_positive_int
from recon.operators.base import GramSpectrumMixin, LinearOperator
from recon.operators.spectral import GramSpectrum


def gaussian_matrix(m: int, n: int, seed: int) -> torch.Tensor:
    """``m x n`` matrix with i.i.d. ``N(0, 1/m)`` entries (so ``E||A x||^2 = ||x||^2``), float64."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g, dtype=torch.float64) / m**0.5


class MatrixOperator(GramSpectrumMixin, LinearOperator):
    """``y = A x`` for an explicit ``m x (H W)`` matrix acting on row-major pixels; measurements ``(B, m)``.

    ``A_pinv`` is exact, from a cached eigendecomposition of ``A A^T``.

    >>> import torch
    >>> op = MatrixOperator(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), (2, 2))  # observe the first pixel
    >>> op.A(torch.arange(4.0).reshape(1, 1, 2, 2))
    tensor([[0.]])
    """

    def __init__(self, matrix: torch.Tensor, image_shape: tuple[int, int], rcond: float = 1e-7):
        matrix = torch.as_tensor(matrix, dtype=torch.float64)
        if matrix.dim() != 2 or matrix.shape[1] != image_shape[0] * image_shape[1]:
            raise ValueError(f"matrix must be m x {image_shape[0] * image_shape[1]} for {image_shape} images; "
                             f"got {tuple(matrix.shape)}.")
        self.image_shape = tuple(image_shape)
        self.measurement_shape = (matrix.shape[0],)
        self.matrix = matrix
        self._matrix32 = matrix.float()
        self.spectrum = GramSpectrum((matrix @ matrix.T).numpy(), row_space=True, rcond=rcond)

    def _weights(self, like: torch.Tensor):
        return (self.matrix if like.dtype == torch.float64 else self._matrix32.to(like.dtype)).to(like.device)

    def _A(self, x):
        return x.reshape(x.shape[0], -1) @ self._weights(x).T

    def _A_adjoint(self, y):
        return (y @ self._weights(y)).reshape(y.shape[0], 1, *self.image_shape)


class GaussianCS(MatrixOperator):
    """Compressed sensing ``y = A x`` with a Gaussian ``A`` of ``n_measurements`` rows: the post's hospitals.

    Each hospital (seed) has its own ``A``; ``m = 10`` and ``m = 25`` are the post's example. Measurements have shape
    ``(B, m)``; the matrix has full row rank with probability one.

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
        super().__init__(gaussian_matrix(n_measurements, n, seed), (image_size, image_size))

    def __repr__(self) -> str:
        return f"GaussianCS(image_size={self.image_size}, n_measurements={self.measurement_shape[0]}, seed={self.seed})"
