"""The linear measurement process y = A x + eps of the post, as an object with its adjoint, pseudo-inverse and prox."""

from __future__ import annotations

import torch

from recon._checks import check_finite, check_lam, check_noise_std, check_shape


class LinearOperator:
    """A linear forward model ``A`` acting on real images of shape ``(B, 1, H, W)``.

    Subclasses implement ``_A`` and ``_A_adjoint``; they override ``_A_pinv`` where the operator has a closed-form
    or cached decomposition, and otherwise inherit CGLS (see :meth:`_A_pinv`).

    Inner products are real: for complex measurements ``<u, v> = Re(u^H v)``, so ``A_adjoint`` is the adjoint of ``A``
    seen as a map between real vector spaces and always returns a real image.

    Attributes:
        image_shape: ``(H, W)``.
        measurement_shape: per-sample shape of ``y`` (without the batch axis).
        measurement_is_complex: whether ``y`` is a complex tensor.
        cg_tol, cg_maxiter: tolerance (relative norm of the normal-equation residual) and iteration cap of the CGLS
            fallback for ``A_pinv``.
        default_tv_weight: the total-variation weight, relative to ``||A||^2``, that ``reconstruct(method="tv")``
            uses unless given one (chosen on validation images: about 3e-4 for sparse-view CT, 1e-2 for MRI).
    """

    image_shape: tuple[int, int]
    measurement_shape: tuple[int, ...]
    measurement_is_complex: bool = False
    cg_tol: float = 1e-8
    cg_maxiter: int = 1000
    default_tv_weight: float = 3e-4

    # -- to implement --------------------------------------------------------------------------------------------
    def _A(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Exact through the spectrum when there is one; otherwise the minimum-norm least-squares solution by CGLS
        (run in float64 to reach ``cg_tol``)."""
        if self.has_spectrum:
            return self.pinv_filtered(y, _ones)
        return cgls(self._A, self._A_adjoint, y, tol=self.cg_tol, maxiter=self.cg_maxiter).to(_real_dtype(y))

    # -- spectral interface (operators with an exact decomposition) ----------------------------------------------
    @property
    def has_spectrum(self) -> bool:
        """Whether ``pinv_filtered`` and ``row_filter`` are available (a cached or closed-form SVD)."""
        return False

    def pinv_filtered(self, y: torch.Tensor, f) -> torch.Tensor:
        """``V diag(f(w) / s) U^T y`` with ``A = U S V^T`` and ``w = s^2``: ``f = 1`` is ``A^+``, ``f = 1[w > c]`` a
        truncated pseudo-inverse, ``f = w / (w + delta)`` the Tikhonov-regularised one. ``f`` maps a tensor of
        eigenvalues of ``A^T A`` to gains."""
        raise self._no_spectrum()

    def row_filter(self, x: torch.Tensor, f) -> torch.Tensor:
        """``f(A^T A) x = V diag(f(w)) V^T x``; ``f = 1`` projects onto the row space of ``A``."""
        raise self._no_spectrum()

    def _no_spectrum(self) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} has no spectral decomposition at this size; noise-aware "
                                   "steps need one (for CT, raise svd_max).")

    # -- public, validated ---------------------------------------------------------------------------------------
    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Forward model: images ``(B, 1, H, W)`` to measurements ``(B, *measurement_shape)``."""
        self._check_image(x, "x")
        return self._A(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Adjoint ``A^T`` in the real inner product: measurements to images."""
        self._check_measurement(y, "y")
        return self._A_adjoint(y)

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Moore–Penrose pseudo-inverse ``A^+ y``: the minimum-norm image among least-squares solutions."""
        self._check_measurement(y, "y")
        return self._A_pinv(y)

    def prox(self, x: torch.Tensor, y: torch.Tensor, lam, rcond: float | None = None) -> torch.Tensor:
        """The post's proximal step ``argmin_z (1-lam)||z-x||^2 + lam min_{u: Au=y} ||z-u||^2 = x + lam A^+(y - A x)``.

        ``lam`` is a number or a ``(B,)`` tensor in [0, 1]; ``lam = 1`` lands on the feasible set ``{A x = y}``
        (when ``y`` is in the range of ``A``), ``lam = 0`` returns ``x``. ``rcond`` (operators with a spectrum) uses
        the pseudo-inverse truncated at that relative singular value instead: data that ``A`` cannot explain exactly
        (model mismatch, noise) are otherwise amplified along the smallest singular directions.
        """
        self._check_image(x, "x")
        self._check_measurement(y, "y")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y must have the same batch size; got {x.shape[0]} and {y.shape[0]}.")
        weight = check_lam(lam, x.shape[0], x)
        residual = y - self._A(x)
        return x + weight * (self._A_pinv(residual) if rcond is None else self.truncated_pinv(residual, rcond))

    def truncated_pinv(self, y: torch.Tensor, rcond: float) -> torch.Tensor:
        """``A^+ y`` with the singular values below ``rcond`` times the largest dropped (a spectral operator's)."""
        if not 0 < rcond < 1:
            raise ValueError(f"rcond must lie in (0, 1) (a relative singular-value cut-off); got {rcond}.")
        return self.pinv_filtered(y, lambda w: (w > rcond**2 * w.max()).to(w.dtype))

    def measure(self, x: torch.Tensor, noise_std: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Simulate ``y = A x + eps`` with ``eps ~ N(0, noise_std^2)`` on every real measurement component.

        For complex measurements the real and imaginary parts each get variance ``noise_std**2``; components that the
        operator does not acquire (e.g. unsampled k-space) stay exactly zero.
        """
        sigma = check_noise_std(noise_std)
        y = self.A(x)
        if sigma == 0:
            return y
        return y + sigma * self.acquired(standard_noise(y, generator))

    def A_fine(self, x_fine: torch.Tensor) -> torch.Tensor:
        """The measurement of the same field rendered on a finer grid (the off-grid simulation that avoids the inverse
        crime). Operators with a continuous-object model implement it (CT: a finer projector integrated over each
        detector bin; MRI: the finer image's k-space, cropped)."""
        raise NotImplementedError(f"{type(self).__name__} has no model of a continuous object; measure images on its "
                                  "own grid with A (and say that the data share the reconstruction's discretisation).")

    def acquired(self, y: torch.Tensor) -> torch.Tensor:
        """Zero the measurement components that the operator does not acquire (identity unless overridden)."""
        return y

    @property
    def n_measurements(self) -> int:
        """Number of scalar measurements per image (complex samples count once)."""
        n = 1
        for s in self.measurement_shape:
            n *= s
        return n

    @property
    def n_pixels(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def norm(self, iters: int = 100, generator: torch.Generator | None = None) -> float:
        """Spectral norm ``||A||_2`` by power iteration on ``A^T A`` (float64)."""
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        x = torch.randn((1, 1, *self.image_shape), generator=g, dtype=torch.float64)
        value = 0.0
        for _ in range(iters):
            x = self._A_adjoint(self._A(x))
            value = float(x.norm())
            x = x / value
        return value**0.5

    # -- checks --------------------------------------------------------------------------------------------------
    def _check_image(self, x: torch.Tensor, name: str) -> None:
        check_shape(
            x,
            (1, *self.image_shape),
            f"{type(self).__name__}: {name}",
            "Images are real tensors (B, 1, H, W); add a channel axis with x.unsqueeze(1) or build the operator "
            "for your image size.",
        )
        if x.is_complex():
            raise TypeError(f"{type(self).__name__}: {name} must be a real image; got a complex tensor. Take x.real.")
        check_finite(x, f"{type(self).__name__}: {name}")

    def _check_measurement(self, y: torch.Tensor, name: str) -> None:
        check_shape(
            y,
            tuple(self.measurement_shape),
            f"{type(self).__name__}: {name}",
            "Pass measurements made by this operator's A or measure().",
        )
        if self.measurement_is_complex != y.is_complex():
            kind = "complex" if self.measurement_is_complex else "real"
            raise TypeError(f"{type(self).__name__}: {name} must be a {kind} tensor; got dtype {y.dtype}.")
        check_finite(y, f"{type(self).__name__}: {name}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_shape={self.image_shape}, measurement_shape={self.measurement_shape})"


def _ones(w: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(w)


class GramSpectrumMixin:
    """Spectral interface from a ``GramSpectrum`` (``self.spectrum``) over flattened ``A`` and ``A^T``."""

    def _flat_ops(self):
        return (lambda v: self._A(v.reshape(v.shape[0], 1, *self.image_shape)).reshape(v.shape[0], -1),
                lambda v: self._A_adjoint(v.reshape(v.shape[0], *self.measurement_shape)).reshape(v.shape[0], -1))

    @property
    def has_spectrum(self) -> bool:
        return self.spectrum is not None

    def pinv_filtered(self, y, f):
        if self.spectrum is None:
            return LinearOperator.pinv_filtered(self, y, f)
        B = y.shape[0]
        return self.spectrum.pinv_filtered(y.reshape(B, -1), f, *self._flat_ops()).reshape(B, 1, *self.image_shape)

    def row_filter(self, x, f):
        if self.spectrum is None:
            return LinearOperator.row_filter(self, x, f)
        B = x.shape[0]
        return self.spectrum.row_filter(x.reshape(B, -1), f, *self._flat_ops()).reshape(x.shape)


def standard_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Unit Gaussian noise shaped like ``like``; complex measurements get independent real and imaginary parts."""
    real = _real_dtype(like)
    noise = torch.randn(like.shape, generator=generator, dtype=real, device=like.device)
    if like.is_complex():
        noise = torch.complex(noise, torch.randn(like.shape, generator=generator, dtype=real, device=like.device))
    return noise


def _real_dtype(t: torch.Tensor) -> torch.dtype:
    return t.real.dtype if t.is_complex() else t.dtype


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample real inner product ``Re(a^H b)``, shape ``(B,)``."""
    prod = a.conj() * b if a.is_complex() else a * b
    return prod.real.reshape(a.shape[0], -1).sum(dim=1)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def cgls(A, At, y: torch.Tensor, tol: float = 1e-8, maxiter: int = 1000) -> torch.Tensor:
    """CGLS (Hestenes–Stiefel CG on ``A^T A x = A^T y`` from ``x = 0``), which converges to ``A^+ y``; float64.

    Stops per sample when ``||A^T r|| <= tol * ||A^T y||``; raises if ``maxiter`` is reached first.
    """
    y = y.to(torch.complex128 if y.is_complex() else torch.float64)
    r = y.clone()
    s = At(r)
    x = torch.zeros_like(s)
    p = s.clone()
    gamma = _dot(s, s)
    target = tol**2 * gamma
    for _ in range(maxiter):
        active = gamma > target
        if not active.any():
            return x
        q = A(p)
        alpha = torch.where(active, gamma / _dot(q, q).clamp_min(1e-300), torch.zeros_like(gamma))
        x = x + _bcast(alpha, x) * p
        r = r - _bcast(alpha, r).to(r.dtype) * q
        s = At(r)
        gamma_new = _dot(s, s)
        beta = torch.where(active, gamma_new / gamma.clamp_min(1e-300), torch.zeros_like(gamma))
        p = s + _bcast(beta, p) * p
        gamma = gamma_new
    if (gamma > target).any():
        raise RuntimeError(
            f"CGLS did not reach tol={tol} in {maxiter} iterations (relative residual "
            f"{float((gamma / target.clamp_min(1e-300)).max().sqrt()) * tol:.2e}); raise cg_maxiter or cg_tol."
        )
    return x
