"""Registry-driven checks of every operator: adjointness, pseudo-inverse, prox optimality, validation."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from registry import OPERATORS, inner, make, random_image, random_measurement

from recon import operators

NAMES = sorted(OPERATORS)


def test_registry_covers_every_operator():
    public = {
        obj for obj in vars(operators).values()
        if inspect.isclass(obj) and issubclass(obj, operators.LinearOperator) and obj is not operators.LinearOperator
    }
    covered = {type(make(name)) for name in NAMES} | {type(make(name)).__mro__[1] for name in NAMES}
    assert public <= covered, f"operators missing from tests/registry.py: {public - covered}"


@pytest.mark.parametrize("name", NAMES)
def test_adjoint(name):
    op = make(name)
    x, y = random_image(op), random_measurement(op)
    lhs, rhs = inner(op.A(x), y), inner(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)
    assert not op.A_adjoint(y).is_complex()


@pytest.mark.parametrize("name", NAMES)
def test_pinv_is_identity_on_the_range(name):
    op, tol = make(name), OPERATORS[name][1]
    y = op.A(random_image(op))
    err = (op.A(op.A_pinv(y)) - y).abs().max() / y.abs().max()
    assert err < tol


@pytest.mark.parametrize("name", NAMES)
def test_pinv_is_the_minimum_norm_least_squares_solution(name):
    """Penrose: A^+ y solves the normal equations and lies in the row space (orthogonal to the null space)."""
    op, tol = make(name), OPERATORS[name][1]
    y = random_measurement(op)
    x = op.A_pinv(y)
    normal = op.A_adjoint(op.A(x) - y)
    assert normal.abs().max() / op.A_adjoint(y).abs().max() < 10 * tol
    # Orthogonal to the null space: x = A^+ A x, i.e. projecting x onto the row space changes nothing.
    assert (op.A_pinv(op.A(x)) - x).abs().max() / x.abs().max() < 10 * tol


@pytest.mark.parametrize("name", NAMES)
def test_prox_lam_one_lands_on_the_feasible_set(name):
    op, tol = make(name), OPERATORS[name][1]
    y = op.A(random_image(op, seed=5))
    x = random_image(op, seed=6)
    z = op.prox(x, y, 1.0)
    assert (op.A(z) - y).abs().max() / y.abs().max() < tol
    assert torch.equal(op.prox(x, y, 0.0), x)


@pytest.mark.parametrize("name", [n for n in NAMES if make(n).n_pixels <= 256])
def test_prox_matches_a_brute_force_solve(name):
    """The post's objective, solved densely.

    With ``P = A^+ A`` (projector onto the row space) and ``u0 = A^+ y``, the feasible set is ``u0 + null(A)`` and
    ``dist(z, H)^2 = ||P z - u0||^2``, so the minimiser of ``(1-lam)||z-x||^2 + lam dist(z, H)^2`` solves
    ``((1-lam) I + lam P) z = (1-lam) x + lam u0``.
    """
    op, tol = make(name), OPERATORS[name][1]
    n = op.n_pixels
    eye = torch.eye(n, dtype=torch.float64).reshape(n, 1, *op.image_shape)
    P = op.A_pinv(op.A(eye)).reshape(n, n).T
    y = op.A(random_image(op, batch=1, seed=7))
    x = random_image(op, batch=1, seed=8).reshape(n)
    u0 = op.A_pinv(y).reshape(n)
    identity = torch.eye(n, dtype=torch.float64)
    for lam in (0.0, 0.3, 0.84):
        z_ref = torch.linalg.solve((1 - lam) * identity + lam * P, (1 - lam) * x + lam * u0)
        z = op.prox(x.reshape(1, 1, *op.image_shape), y, lam).reshape(n)
        assert (z - z_ref).abs().max() < 10 * tol * max(1.0, float(z_ref.abs().max()))
    # lam = 1: the system is singular; the minimiser is the projection, x's null-space part plus u0.
    z = op.prox(x.reshape(1, 1, *op.image_shape), y, 1.0).reshape(n)
    assert (z - ((identity - P) @ x + u0)).abs().max() < 10 * tol * max(1.0, float(x.abs().max()))


@pytest.mark.parametrize("name", NAMES)
def test_prox_accepts_one_lam_per_sample(name):
    op = make(name)
    x, y = random_image(op), op.A(random_image(op, seed=3))
    lam = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    batched = op.prox(x, y, lam)
    for i, value in enumerate(lam.tolist()):
        single = op.prox(x[i : i + 1], y[i : i + 1], value)
        assert torch.allclose(batched[i : i + 1], single, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float32_round_trip(name):
    op = make(name)
    x = random_image(op).float()
    y = op.A(x)
    assert y.dtype in (torch.float32, torch.complex64)
    assert op.A_adjoint(y).dtype == torch.float32
    assert op.A_pinv(y).dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_measure_noise_statistics_and_seed(name):
    op = make(name)
    x = random_image(op, batch=64)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    y1, y2 = op.measure(x, 0.5, g1), op.measure(x, 0.5, g2)
    assert torch.equal(y1, y2)
    eps = y1 - op.A(x)
    acquired = op.acquired(torch.ones_like(eps)) != 0
    parts = [eps.real, eps.imag] if eps.is_complex() else [eps]
    values = torch.cat([p[acquired] for p in parts])
    assert abs(float(values.std()) - 0.5) < 0.05
    assert (eps[~acquired] == 0).all()
    assert torch.equal(op.measure(x, 0.0), op.A(x))


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_have_clear_errors(name):
    op = make(name)
    x = random_image(op)
    y = op.A(x)
    with pytest.raises(ValueError, match="must have shape"):
        op.A(x[:, 0])
    with pytest.raises(ValueError, match="must have shape"):
        op.A_adjoint(y[..., :-1] if y.dim() > 2 else y[:, :-1])
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        op.prox(x, y, 1.5)
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        op.prox(x, y, torch.tensor([0.2, -0.1, 0.3]))
    with pytest.raises(ValueError, match="one weight per sample"):
        op.prox(x, y, torch.tensor([0.2, 0.3]))
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        op.A(bad)
    with pytest.raises(ValueError, match="noise_std"):
        op.measure(x, -1.0)
    with pytest.raises(ValueError, match="same batch size"):
        op.prox(x[:2], y, 0.5)


def test_ct_agrees_with_scikit_image():
    from skimage.data import shepp_logan_phantom
    from skimage.transform import iradon, radon, resize

    for size, views in ((64, 8), (64, 180), (63, 23)):
        image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
        op = operators.ParallelBeamCT(size, views)
        theta = np.degrees(op.angles)
        ref = radon(image, theta=theta, circle=True).T
        ours = op.A(torch.from_numpy(image)[None, None])[0, 0].numpy()
        assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 0.01
        fbp = op.fbp(torch.from_numpy(ref.copy())[None, None])[0, 0].numpy()
        ref_fbp = iradon(ref.T, theta=theta, filter_name="ramp", circle=True)
        yy, xx = np.mgrid[:size, :size] - size // 2
        inside = yy**2 + xx**2 <= (size // 2) ** 2
        # Back-projection differs (exact adjoint of bilinear sampling vs linear interpolation): a few percent.
        rel = np.linalg.norm((fbp - ref_fbp)[inside]) / np.linalg.norm(ref_fbp[inside])
        assert rel < (0.025 if views >= 180 else 0.06)
        err_ours = np.linalg.norm((fbp - image)[inside])
        err_ref = np.linalg.norm((ref_fbp - image)[inside])
        assert err_ours < 1.1 * err_ref


def test_ct_norm_and_rank_deficiency():
    op = operators.ParallelBeamCT(16, 8)
    s = op.spectrum.singular_values
    assert abs(op.norm() - float(s[0])) < 1e-6 * float(s[0])
    assert op.spectrum.rank < op.n_measurements  # rays that miss the image and too few views: not full row rank


def test_mri_lam_one_replaces_acquired_kspace():
    op = operators.CartesianMRI(16, 4, 0.125, "equispaced", seed=0)
    x, target = random_image(op, batch=1), random_image(op, batch=1, seed=9)
    z = op.prox(x, op.A(target), 1.0)
    kz, kt, kx = (torch.fft.fft2(v, norm="ortho") for v in (z, target, x))
    sampled = op.mask | op.mask[(-torch.arange(16)) % 16]
    assert torch.allclose(kz[..., sampled], kt[..., sampled], atol=1e-12)
    assert torch.allclose(kz[..., ~sampled], kx[..., ~sampled], atol=1e-12)


def test_mri_masks_have_exact_counts_and_are_seeded():
    for pattern in operators.MASK_PATTERNS:
        for accel, frac in ((4, 0.08), (8, 0.04)):
            m = operators.cartesian_mask(64, accel, frac, pattern, seed=5)
            assert int(m.sum()) == round(64 / accel)
            centre = round(64 * frac)
            assert m[32 - centre // 2 : 32 - centre // 2 + centre].all()
            assert torch.equal(m, operators.cartesian_mask(64, accel, frac, pattern, seed=5))
    with pytest.raises(ValueError, match="unknown mask pattern"):
        operators.cartesian_mask(64, 4, 0.08, "spiral", seed=0)
    with pytest.raises(ValueError, match="acceleration"):
        operators.cartesian_mask(64, 0.5, 0.08, "random", seed=0)
    with pytest.raises(ValueError, match="central lines"):
        operators.cartesian_mask(64, 8, 0.5, "random", seed=0)


def test_gaussian_hospitals_differ_and_are_full_rank():
    a, b = operators.GaussianCS(16, 10, seed=0), operators.GaussianCS(16, 25, seed=1)
    assert a.spectrum.rank == 10 and b.spectrum.rank == 25
    with pytest.raises(ValueError, match="exceeds"):
        operators.GaussianCS(4, 17)


def test_sparse_products_are_differentiable_and_exact():
    op = operators.ParallelBeamCT(12, 5)
    x = random_image(op, batch=2).requires_grad_(True)
    y = random_measurement(op, batch=2)
    (op.A(x) * y).sum().backward()
    assert torch.allclose(x.grad, op.A_adjoint(y), atol=1e-12)


SPECTRAL = [n for n in NAMES if make(n).has_spectrum]


@pytest.mark.parametrize("name", SPECTRAL)
def test_spectral_filters_match_dense_linear_algebra(name):
    """row_filter(., 1) projects onto the row space; pinv_filtered with w/(w+d) is Tikhonov's (A^T A + d I)^-1 A^T."""
    op, tol = make(name), OPERATORS[name][1]
    x, y = random_image(op), random_measurement(op)
    assert (op.row_filter(x, torch.ones_like) - op.A_pinv(op.A(x))).abs().max() < 10 * tol * x.abs().max()
    if op.n_pixels > 256:
        return
    n = op.n_pixels
    eye = torch.eye(n, dtype=torch.float64).reshape(n, 1, *op.image_shape)
    AtA = op.A_adjoint(op.A(eye)).reshape(n, n)
    delta = 0.3 * float(torch.linalg.eigvalsh(AtA).max())
    ref = torch.linalg.solve(AtA + delta * torch.eye(n, dtype=torch.float64), op.A_adjoint(y).reshape(y.shape[0], n).T).T
    ours = op.pinv_filtered(y, lambda w: w / (w + delta)).reshape(y.shape[0], n)
    assert (ours - ref).abs().max() < 1e-8 * ref.abs().max()


@pytest.mark.parametrize("name", SPECTRAL)
def test_truncated_pinv_keeps_only_large_singular_values(name):
    op = make(name)
    x = random_image(op)
    w = op.spectrum.w if hasattr(op, "spectrum") else op.m_sym[op.m_sym > 0]  # eigenvalues of A^T A
    cutoff = 0.5 * float(w.max()) if float(w.min()) < 0.5 * float(w.max()) else 0.999 * float(w.max())
    kept = op.row_filter(x, lambda w: (w > cutoff).double())
    # idempotent, and the gated pseudo-inverse inverts A exactly on the kept directions
    assert (op.row_filter(kept, lambda w: (w > cutoff).double()) - kept).abs().max() < 1e-8 * kept.abs().max()
    gated = op.pinv_filtered(op.A(kept), lambda w: (w > cutoff).double())
    assert (gated - kept).abs().max() < 1e-6 * kept.abs().max()


@pytest.mark.parametrize("name", [n for n in NAMES if make(n).has_spectrum])
def test_a_truncated_prox_drops_only_the_small_singular_directions(name):
    """rcond below every kept singular value changes nothing; a large one keeps the step in the leading directions,
    so its correction is no larger; a cut-off outside (0, 1) is refused."""
    op = make(name)
    y, x = random_measurement(op), random_image(op, seed=6)
    exact = op.prox(x, y, 1.0)
    assert torch.allclose(op.prox(x, y, 1.0, rcond=1e-12), exact, atol=1e-5 * float(exact.abs().max()))
    coarse = op.prox(x, y, 1.0, rcond=0.5)
    assert float((coarse - x).norm()) <= float((exact - x).norm()) * (1 + 1e-6)
    with pytest.raises(ValueError, match="rcond"):
        op.prox(x, y, 1.0, rcond=1.5)
