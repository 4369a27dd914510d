"""Spectral filters of ``A^T A`` from the eigendecomposition of the smaller Gram matrix (cached, float64).

With the SVD ``A = U S V^T`` (``w = s^2``), two primitives cover every pseudo-inverse the samplers need:

* ``pinv_filtered(y, f) = V diag(f(w) / s) U^T y``: ``f = 1`` is the Moore–Penrose ``A^+``, ``f = 1[w > c]`` a
  truncated one, ``f = w / (w + delta)`` Tikhonov's ``(A^T A + delta I)^-1 A^T``;
* ``row_filter(x, f) = V diag(f(w)) V^T x``: ``f = 1`` is the projector onto the row space.
"""

from __future__ import annotations

import numpy as np
import torch


class GramSpectrum:
    """Eigendecomposition of ``G = A A^T`` (``row_space=True``, when ``m <= n``) or ``G = A^T A`` (when ``m > n``).

    Eigenvalues below ``(rcond * s_max)^2`` are dropped: float64 resolves ``w / w_max`` to about 1e-14, so ``rcond``
    much below 1e-7 would keep round-off. The callers pass ``A`` and ``A^T`` on flattened batches ``(B, d)``.
    """

    def __init__(self, gram: np.ndarray, row_space: bool, rcond: float = 1e-6):
        if not 0 < rcond < 1:
            raise ValueError(f"rcond must lie in (0, 1); got {rcond}.")
        w, vecs = np.linalg.eigh(np.asarray(gram, dtype=np.float64))
        keep = w > (rcond**2) * w.max()
        self.row_space = row_space
        self.rcond = rcond
        self.w = torch.from_numpy(w[keep].copy())
        self.vecs = torch.from_numpy(vecs[:, keep].copy())
        self._copies = {torch.device("cpu"): (self.w, self.vecs)}

    @property
    def singular_values(self) -> torch.Tensor:
        return self.w.sqrt().flip(0)

    @property
    def rank(self) -> int:
        return int(self.w.numel())

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigenvalues and eigenvectors on ``device`` (copied once per device)."""
        if device not in self._copies:
            self._copies[device] = (self.w.to(device), self.vecs.to(device))
        return self._copies[device]

    def _gain(self, f, scale_power: float, w: torch.Tensor) -> torch.Tensor:
        gain = torch.as_tensor(f(w), dtype=torch.float64, device=w.device)
        return gain * w**scale_power

    def pinv_filtered(self, y: torch.Tensor, f, A, At) -> torch.Tensor:
        """``V diag(f(w)/s) U^T y`` for flattened ``y`` (B, m); returns (B, n)."""
        dtype, (w, vecs) = y.dtype, self._on(y.device)
        y = y.to(torch.float64)
        if self.row_space:  # U = vecs, V = A^T U W^-1/2
            return At(((y @ vecs) * self._gain(f, -1.0, w)) @ vecs.T).to(dtype)
        return (((At(y) @ vecs) * self._gain(f, -1.0, w)) @ vecs.T).to(dtype)  # V = vecs

    def row_filter(self, x: torch.Tensor, f, A, At) -> torch.Tensor:
        """``V diag(f(w)) V^T x`` for flattened ``x`` (B, n); returns (B, n)."""
        dtype, (w, vecs) = x.dtype, self._on(x.device)
        x = x.to(torch.float64)
        if self.row_space:
            return At(((A(x) @ vecs) * self._gain(f, -1.0, w)) @ vecs.T).to(dtype)
        return (((x @ vecs) * self._gain(f, 0.0, w)) @ vecs.T).to(dtype)
