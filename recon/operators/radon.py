"""Sparse-view parallel-beam CT: a sparse Radon system matrix with an exact adjoint, and filtered back-projection."""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse
import torch

from recon._checks import check_positive_int
from recon.operators.base import GramSpectrumMixin, LinearOperator
from recon.operators.sparse import SparseMatrix
from recon.operators.spectral import GramSpectrum


def parallel_beam_angles(n_views: int, arc: float = 180.0) -> np.ndarray:
    """``n_views`` equispaced projection angles over [0, ``arc`` degrees), in radians (``arc < 180``: a limited-angle
    scan)."""
    check_positive_int(n_views, "n_views")
    if not 0 < arc <= 180:
        raise ValueError(f"arc is the scanned angle in degrees, in (0, 180]; got {arc}.")
    return np.arange(n_views) * (math.radians(arc) / n_views)


def radon_matrix(image_size: int, angles: np.ndarray, center: float | None = None) -> scipy.sparse.csr_matrix:
    """System matrix of the discrete parallel-beam Radon transform (a "rotate-and-sum" projector).

    For each angle the image is sampled by bilinear interpolation on a grid rotated about pixel ``center`` (default
    ``N // 2``; a fraction puts it between pixel centres) and summed along one axis, one sample per pixel spacing, so
    a ray through the image has the length of its chord in pixels; detector bin ``d`` sits at offset ``d - center``.
    This is the geometry of ``skimage.transform.radon(circle=True)``: ``N`` detector bins, field of view the inscribed
    circle. Row ``k * N + d`` is view ``k``, detector bin ``d``; columns are row-major pixels.
    """
    check_positive_int(image_size, "image_size", 2)
    N = image_size
    c = N // 2 if center is None else float(center)
    offsets = np.arange(N, dtype=np.float64) - c
    det, along = np.meshgrid(offsets, offsets, indexing="ij")  # (detector, sample along the ray)
    det_index = np.broadcast_to(np.arange(N)[:, None], det.shape)
    rows, cols, vals = [], [], []
    for k, theta in enumerate(np.asarray(angles, dtype=np.float64)):
        cos, sin = math.cos(theta), math.sin(theta)
        col = cos * det + sin * along + c
        row = -sin * det + cos * along + c
        c0, r0 = np.floor(col), np.floor(row)
        fc, fr = col - c0, row - r0
        for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            ri, ci = r0 + dr, c0 + dc
            inside = (ri >= 0) & (ri < N) & (ci >= 0) & (ci < N) & (w > 0)
            rows.append(k * N + det_index[inside])
            cols.append((ri[inside] * N + ci[inside]).astype(np.int64))
            vals.append(w[inside])
    matrix = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(angles) * N, N * N)
    )
    return matrix.tocsr()


def ramp_filter(n_detectors: int) -> torch.Tensor:
    """Frequency response of the band-limited ramp filter, sampled in the spatial domain (Kak & Slaney 1988, eq. 3.61).

    Returns the real response on ``P`` FFT bins, where ``P >= 2 * n_detectors`` is a power of two (zero-padding
    avoids the circular-convolution wrap-around). Sampling ``h`` in space, rather than ``|omega|`` in frequency,
    avoids the DC offset of the naive ramp.
    """
    P = max(64, 2 ** math.ceil(math.log2(2 * n_detectors)))
    n = np.concatenate([np.arange(1, P // 2 + 1, 2), np.arange(P // 2 - 1, 0, -2)])
    h = np.zeros(P)
    h[0] = 0.25
    h[1::2] = -1.0 / (math.pi * n) ** 2
    return torch.from_numpy(np.real(np.fft.fft(h)))


@functools.lru_cache(maxsize=16)
def _cached_system(image_size: int, n_views: int, arc: float = 180.0) -> SparseMatrix:
    return SparseMatrix(radon_matrix(image_size, parallel_beam_angles(n_views, arc)))


@functools.lru_cache(maxsize=16)
def _cached_fine_system(image_size: int, n_views: int, factor: int, arc: float = 180.0) -> SparseMatrix:
    """The same scanner on a grid ``factor`` times finer: rotation centre and detector bins placed so that the fine
    pixels subdivide the coarse ones and ``factor`` fine bins subdivide each coarse bin."""
    center = factor * (image_size // 2) + (factor - 1) / 2
    return SparseMatrix(radon_matrix(factor * image_size, parallel_beam_angles(n_views, arc), center=center))


@functools.lru_cache(maxsize=4)
def _cached_spectrum(image_size: int, n_views: int, rcond: float, arc: float = 180.0) -> GramSpectrum:
    M = _cached_system(image_size, n_views, arc).scipy
    m, n = M.shape
    gram = (M @ M.T) if m <= n else (M.T @ M)
    return GramSpectrum(gram.toarray(), row_space=m <= n, rcond=rcond)


def _fine_factor(x_fine: torch.Tensor, size: int) -> int:
    """The integer refinement of a fine rendering ``(B, 1, f size, f size)``, checked."""
    if x_fine.dim() != 4 or x_fine.shape[1] != 1 or x_fine.shape[-1] != x_fine.shape[-2] or x_fine.shape[-1] % size:
        raise ValueError(f"a fine rendering must have shape (B, 1, f*{size}, f*{size}) for an integer f; got "
                         f"{tuple(x_fine.shape)}. Render the images at a multiple of the reconstruction size.")
    return x_fine.shape[-1] // size


class ParallelBeamCT(GramSpectrumMixin, LinearOperator):
    """Sparse-view parallel-beam CT ``y = R x``: ``n_views`` equispaced angles over [0, pi), ``N`` detector bins.

    Measurements have shape ``(B, 1, n_views, N)`` (a sinogram, one row per view) in units of pixel values times
    pixel lengths, the scale of ``skimage.transform.radon``; ``||A||_2`` grows like ``N * sqrt(n_views)`` and is
    given by :meth:`norm`.

    ``A_pinv`` is exact up to a relative singular-value cut-off ``rcond``: from a cached eigendecomposition of the
    smaller Gram matrix when it has at most ``svd_max`` rows (always at 64x64), otherwise by CGLS to ``cg_tol``. A
    sparse-view CT matrix is rank deficient (rays that miss the image, and more unknowns than measurements), so this
    is the truncated pseudo-inverse; with noisy data it amplifies the noise along small singular values.

    Args:
        image_size: ``N`` for ``N x N`` images.
        n_views: number of projection angles.
        arc: the scanned angle in degrees (180: a full parallel-beam scan; less: a limited-angle scan).
        rcond: relative singular-value cut-off of the cached pseudo-inverse.
        svd_max: largest Gram matrix dimension to eigendecompose (memory ``8 * svd_max**2`` bytes).

    >>> import torch
    >>> op = ParallelBeamCT(32, n_views=8)
    >>> op.A(torch.ones(2, 1, 32, 32)).shape
    torch.Size([2, 1, 8, 32])
    """

    def __init__(self, image_size: int, n_views: int, *, arc: float = 180.0, rcond: float = 1e-6, svd_max: int = 4096):
        check_positive_int(image_size, "image_size", 2)
        check_positive_int(n_views, "n_views")
        self.image_size = image_size
        self.n_views = n_views
        self.arc = float(arc)
        self.angles = parallel_beam_angles(n_views, self.arc)
        self.image_shape = (image_size, image_size)
        self.measurement_shape = (1, n_views, image_size)
        self.rcond = rcond
        self.svd_max = svd_max
        self.matrix = _cached_system(image_size, n_views, self.arc)

    def _A(self, x):
        B = x.shape[0]
        return self.matrix.matmul(x.reshape(B, -1)).reshape(B, *self.measurement_shape)

    def _A_adjoint(self, y):
        B = y.shape[0]
        return self.matrix.rmatmul(y.reshape(B, -1)).reshape(B, 1, *self.image_shape)

    @property
    def spectrum(self) -> GramSpectrum | None:
        """Cached eigendecomposition behind ``A_pinv``, or None when the Gram matrix exceeds ``svd_max``."""
        if min(self.matrix.shape) > self.svd_max:
            return None
        return _cached_spectrum(self.image_size, self.n_views, self.rcond, self.arc)

    def A_fine(self, x_fine: torch.Tensor) -> torch.Tensor:
        """The measurement of a rendering ``factor`` times finer (``(B, 1, f N, f N)``, fine pixels subdividing the
        coarse ones): projected in this scanner's geometry on the fine grid, each detector bin integrated over its
        width (the mean of its ``f`` fine bins), in this operator's units. A measurement model without the inverse
        crime: the data do not come from the matrix that reconstructs them."""
        factor = _fine_factor(x_fine, self.image_size)
        B, N = x_fine.shape[0], self.image_size
        fine = _cached_fine_system(N, self.n_views, factor, self.arc).matmul(x_fine.reshape(B, -1))
        return fine.reshape(B, 1, self.n_views, N, factor).mean(-1) / factor  # fine-pixel units -> coarse

    def fbp(self, y: torch.Tensor) -> torch.Tensor:
        """Filtered back-projection: ramp-filter each view, back-project with ``A^T``, scale by the angle per view
        (``pi / n_views`` for a full scan; a limited-angle scan leaves its missing wedge empty)."""
        self._check_measurement(y, "y")
        N = self.image_size
        response = ramp_filter(N).to(dtype=y.dtype, device=y.device)
        P = response.numel()
        spectrum = torch.fft.fft(y, n=P, dim=-1) * response
        filtered = torch.fft.ifft(spectrum, dim=-1).real[..., :N].contiguous()
        return self._A_adjoint(filtered) * (math.radians(self.arc) / self.n_views)

    def __repr__(self) -> str:
        arc = "" if self.arc == 180 else f", arc={self.arc:g}"
        return f"ParallelBeamCT(image_size={self.image_size}, n_views={self.n_views}{arc})"
