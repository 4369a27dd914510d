"""A sparse matrix applied to batches in torch, with its transpose stored as its own CSR for a fast exact adjoint."""

from __future__ import annotations

import warnings

import scipy.sparse
import torch


class SparseMatrix:
    """``M`` (``m x n``) and ``M^T`` as torch CSR tensors, per dtype; products are differentiable.

    Transposing a CSR matrix on the fly is 25–800x slower than multiplying by a stored transpose, so both are kept.
    Products run outside autocast (there is no bf16 CSR kernel) in the dtype of the input (float32 or float64).
    """

    def __init__(self, matrix: scipy.sparse.spmatrix):
        csr = scipy.sparse.csr_matrix(matrix, dtype="float64")
        csr.sum_duplicates()
        self.shape = csr.shape
        self._scipy = {False: csr, True: csr.T.tocsr()}
        self._torch: dict[tuple[bool, torch.dtype, torch.device], torch.Tensor] = {}

    @property
    def scipy(self) -> scipy.sparse.csr_matrix:
        return self._scipy[False]

    def _get(self, transpose: bool, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
        device = torch.device("cpu") if device is None else device
        key = (transpose, dtype, device)
        if key not in self._torch:
            m = self._scipy[transpose]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self._torch[key] = torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype("int64")),
                    torch.from_numpy(m.indices.astype("int64")),
                    torch.from_numpy(m.data).to(dtype),
                    size=m.shape,
                    check_invariants=False,  # built by scipy, which keeps CSR invariants
                ).to(device)
        return self._torch[key]

    def matmul(self, v: torch.Tensor) -> torch.Tensor:
        """``v M^T`` for row vectors ``v`` of shape ``(B, n)``: returns ``(B, m)``."""
        return _SparseProduct.apply(v, self, False)

    def rmatmul(self, v: torch.Tensor) -> torch.Tensor:
        """``v M`` for row vectors ``v`` of shape ``(B, m)``: returns ``(B, n)`` (the adjoint)."""
        return _SparseProduct.apply(v, self, True)


def _product(M: SparseMatrix, v: torch.Tensor, transpose: bool) -> torch.Tensor:
    dtype = v.dtype if v.dtype in (torch.float32, torch.float64) else torch.float32
    with torch.autocast(v.device.type, enabled=False):
        out = torch.sparse.mm(M._get(transpose, dtype, v.device), v.to(dtype).T.contiguous())
    return out.T


class _SparseProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, M, transpose):
        ctx.M, ctx.transpose = M, transpose
        return _product(M, v, transpose)

    @staticmethod
    def backward(ctx, grad):
        return _product(ctx.M, grad, not ctx.transpose), None, None
