"""Truncated pseudo-inverse from the eigendecomposition of the smaller Gram matrix (cached, float64)."""

from __future__ import annotations

import numpy as np
import torch


class GramPseudoInverse:
    """``A^+`` through ``G = A A^T`` (when ``m <= n``) or ``G = A^T A`` (when ``m > n``), eigendecomposed once.

    With ``G = U diag(w) U^T`` and ``K = U diag(1/w) U^T`` over the eigenvalues kept, ``A^+ y = A^T K y`` in the first
    case and ``K A^T y`` in the second. Eigenvalues below ``(rcond * s_max)^2`` are treated as zero: that is the
    truncated pseudo-inverse, exact on the range of ``A`` up to the discarded directions (float64 resolves
    ``w / w_max`` to about 1e-14, so ``rcond`` much below 1e-7 would keep round-off).

    Args:
        gram: the dense Gram matrix, ``(m, m)`` or ``(n, n)``.
        row_space: True when ``gram = A A^T`` (apply ``K`` before ``A^T``), False when ``gram = A^T A``.
        rcond: relative singular-value cut-off.
    """

    def __init__(self, gram: np.ndarray, row_space: bool, rcond: float = 1e-6):
        if not 0 < rcond < 1:
            raise ValueError(f"rcond must lie in (0, 1); got {rcond}.")
        w, U = np.linalg.eigh(np.asarray(gram, dtype=np.float64))
        keep = w > (rcond**2) * w.max()
        self.row_space = row_space
        self.rcond = rcond
        self.singular_values = torch.from_numpy(np.sqrt(np.clip(w[keep], 0, None))[::-1].copy())
        self.rank = int(keep.sum())
        Uk = U[:, keep]
        self._K = torch.from_numpy((Uk / w[keep]) @ Uk.T)

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """Multiply a batch of flattened vectors ``(B, d)`` by ``K`` in float64."""
        return (v.to(torch.float64) @ self._K).to(v.dtype)
