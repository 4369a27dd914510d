"""Undersampled Cartesian MRI: an orthonormal 2-D FFT followed by a mask of phase-encoding lines."""

from __future__ import annotations

import torch

from recon._checks import check_positive_int
from recon.operators.base import LinearOperator
from recon.operators.masks import cartesian_mask
from recon.operators.radon import _fine_factor


class CartesianMRI(LinearOperator):
    """Single-coil Cartesian MRI ``y = P(Lambda) F x`` with orthonormal ``F`` and a line mask ``P(Lambda)``.

    Measurements are complex k-space tensors ``(B, 1, H, W)`` in FFT order, exactly zero on unsampled lines: columns
    (phase encoding along the image width, ``orientation="columns"``) or rows (``"rows"``: the same scanner with the
    phase-encoding direction turned by 90 degrees). ``||A||_2 = 1``.

    Images are real, so ``A`` maps real images to complex data and the adjoint in the real inner product is
    ``A^T y = Re(F^H P^T y)``. A real image has Hermitian-symmetric k-space, so a sampled line ``k`` also tells the
    conjugate line ``-k``: ``A^T A = F^H diag(m_sym) F`` with ``m_sym(k) = (m(k) + m(-k)) / 2`` and
    ``A^+ y = F^H diag(1 / m_sym) F A^T y`` (zero where ``m_sym = 0``). At ``lam = 1`` the proximal step therefore
    replaces the acquired k-space of ``x`` by the data (averaging the two estimates of a line sampled on both sides),
    which is Song et al.'s closed form.

    Args:
        image_size: ``N`` for ``N x N`` images.
        acceleration: ``N / (number of sampled lines)``.
        center_fraction: fraction of lines in the fully sampled centre.
        pattern: ``"random"``, ``"equispaced"`` or ``"variable_density"``.
        seed: seed of the mask.
        orientation: ``"columns"`` or ``"rows"``, the lines the mask selects.

    >>> import torch
    >>> op = CartesianMRI(32, acceleration=4, center_fraction=0.08, seed=0)
    >>> int(op.mask_centered.sum())
    8
    """

    measurement_is_complex = True
    default_tv_weight = 1e-2  # validation choice for line masks (see LinearOperator)

    def __init__(self, image_size: int, acceleration: float, center_fraction: float = 0.08,
                 pattern: str = "random", seed: int = 0, orientation: str = "columns"):
        check_positive_int(image_size, "image_size", 2)
        self.image_size = image_size
        self.acceleration = acceleration
        self.center_fraction = center_fraction
        self.pattern = pattern
        self.seed = seed
        self.image_shape = (image_size, image_size)
        self.measurement_shape = (1, image_size, image_size)
        self.mask_centered = cartesian_mask(image_size, acceleration, center_fraction, pattern, seed)
        if orientation not in ("columns", "rows"):
            raise ValueError(f"orientation must be 'columns' or 'rows' (the k-space lines sampled); got {orientation!r}.")
        self.orientation = orientation
        self.mask = torch.fft.ifftshift(self.mask_centered)  # FFT order
        if orientation == "rows":
            self.mask = self.mask[:, None]  # broadcasts over columns: whole rows of k-space
        mirrored = self.mask[(-torch.arange(image_size)) % image_size]
        self.m_sym = (self.mask.double() + mirrored.double()) / 2  # eigenvalues of A^T A per k-space line

    def _A(self, x):
        k = torch.fft.fft2(x, norm="ortho")
        return k * self.mask.to(k.device)

    def _A_adjoint(self, y):
        return torch.fft.ifft2(y * self.mask.to(y.device), norm="ortho").real

    @property
    def has_spectrum(self) -> bool:
        return True

    def _fourier_filter(self, x, gain):
        k = torch.fft.fft2(x, norm="ortho") * gain.to(device=x.device, dtype=x.dtype)
        return torch.fft.ifft2(k, norm="ortho").real

    def _gain(self, f, power: float) -> torch.Tensor:
        sampled = self.m_sym > 0
        w = self.m_sym[sampled]
        gain = torch.zeros_like(self.m_sym)
        gain[sampled] = torch.as_tensor(f(w), dtype=torch.float64) * w**power
        return gain

    def pinv_filtered(self, y, f):
        return self._fourier_filter(self._A_adjoint(y), self._gain(f, -1.0))

    def row_filter(self, x, f):
        return self._fourier_filter(x, self._gain(f, 0.0))

    def A_fine(self, x_fine: torch.Tensor) -> torch.Tensor:
        """The measurement of a rendering ``factor`` times finer (``(B, 1, f N, f N)``, fine pixels subdividing the
        coarse ones): its k-space at this grid's frequencies, cropped from the fine FFT, rescaled and phase-shifted to
        this grid's sample positions, then masked. The scanner samples the object's Fourier transform, not the FFT of
        the pixel grid that reconstructs it, so the data carry no inverse crime."""
        factor = _fine_factor(x_fine, self.image_size)
        N, M = self.image_size, factor * self.image_size
        k_fine = torch.fft.fft2(x_fine, norm="ortho")
        freqs = torch.fft.fftfreq(N, d=1.0 / N).round().long()  # this grid's frequencies, FFT order
        index = (freqs % M).to(k_fine.device)
        k = k_fine[..., index[:, None], index[None, :]]
        # Coarse samples sit at fine position f i + (f - 1) / 2: a phase of pi k (1/N - 1/M) per axis.
        phase = torch.exp(1j * torch.pi * freqs.double() * (1 / N - 1 / M))
        k = k * (phase[:, None] * phase[None, :]).to(device=k.device, dtype=k.dtype) / factor
        return k * self.mask.to(k.device)

    def acquired(self, y):
        return y * self.mask.to(y.device)

    def zero_filled(self, y: torch.Tensor) -> torch.Tensor:
        """Zero-filled reconstruction ``Re(F^H y)`` (equal to ``A^T y``), the usual MRI baseline."""
        return self.A_adjoint(y)

    @property
    def n_measurements(self) -> int:
        return self.image_size * int(self.mask.sum())

    def __repr__(self) -> str:
        return (f"CartesianMRI(image_size={self.image_size}, acceleration={self.acceleration}, "
                f"center_fraction={self.center_fraction}, pattern={self.pattern!r}, seed={self.seed}"
                + ("" if self.orientation == "columns" else ", orientation='rows'") + ")")
