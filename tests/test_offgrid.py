"""Measurements off the reconstruction grid agree with closed-form ones for a disk; noise models keep their promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch

import recon
from recon.data.offgrid import fine_and_truth
from recon.operators.noise import ComplexGaussianMRI, PoissonCT, RelativeGaussian, relative_noise_std, simulate

N, FACTOR = 64, 4


def disk(n: int, radius: float, cx: float, cy: float, supersample: int = 8) -> torch.Tensor:
    """An area-averaged disk on an ``n x n`` grid of the field [-1, 1]^2 (u right, v up)."""
    m = n * supersample
    c = (np.arange(m) + 0.5) / m * 2 - 1
    v, u = np.meshgrid(-c, c, indexing="ij")
    inside = ((u - cx) ** 2 + (v - cy) ** 2 < radius**2).astype(np.float64)
    return torch.from_numpy(inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3)))[None, None]


def coarse(fine: torch.Tensor) -> torch.Tensor:
    return fine.reshape(1, 1, N, FACTOR, N, FACTOR).mean(dim=(3, 5))


@pytest.mark.parametrize("cx,cy,radius", [(0.2, -0.1, 0.3), (-0.3, 0.25, 0.4)])
def test_ct_off_grid_matches_the_disks_chord_lengths(cx, cy, radius):
    """A disk's projection is 2 sqrt(R^2 - (t - s)^2), s the centre's detector coordinate u cos + v sin about the
    rotation centre (pixel N // 2): integrated over each bin, the off-grid data match it to 0.2 %; the inverse-crime
    data of the coarse image are ten times further off."""
    op = recon.ParallelBeamCT(N, 8)
    fine = disk(N * FACTOR, radius, cx, cy)
    centre = (N // 2 + 0.5) / N * 2 - 1  # the rotation centre in field coordinates (u; v = -centre)
    du, dv, R = (cx - centre) * N / 2, (cy + centre) * N / 2, radius * N / 2
    exact = np.zeros((8, N))
    for k, theta in enumerate(op.angles):
        s = du * math.cos(theta) + dv * math.sin(theta)
        for d, t in enumerate(np.arange(N) - N // 2):
            ts = np.linspace(t - 0.5, t + 0.5, 201)
            exact[k, d] = np.trapezoid(2 * np.sqrt(np.clip(R**2 - (ts - s) ** 2, 0, None)), ts)
    exact = torch.from_numpy(exact)
    off = float((op.A_fine(fine)[0, 0] - exact).norm() / exact.norm())
    on = float((op.A(coarse(fine))[0, 0] - exact).norm() / exact.norm())
    assert off < 2e-3 and on > 5 * off, (off, on)


@pytest.mark.parametrize("cx,cy,radius", [(0.0, 0.0, 0.5), (0.2, -0.1, 0.3)])
def test_mri_off_grid_matches_the_disks_fourier_transform(cx, cy, radius):
    """A disk's Fourier transform is R J1(2 pi R rho) / rho: the off-grid k-space matches it to 0.5 %, the FFT of the
    coarse image (the inverse crime) is off by several per cent at high frequencies."""
    op = recon.CartesianMRI(N, 1, 1.0, seed=0)  # every line
    fine = disk(N * FACTOR, radius, cx, cy)
    f = np.fft.fftfreq(N, 1 / N)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    R, col, row = radius * N / 2, (cx + 1) / 2 * N, (1 - cy) / 2 * N
    rho = np.sqrt(fx**2 + fy**2) / N
    with np.errstate(invalid="ignore", divide="ignore"):
        transform = np.where(rho > 0, R * scipy.special.j1(2 * np.pi * R * rho) / np.where(rho > 0, rho, 1), np.pi * R**2)
    exact = torch.from_numpy(transform * np.exp(-2j * np.pi * (fy * (row - 0.5) + fx * (col - 0.5)) / N) / N)
    off = float((op.A_fine(fine)[0, 0] - exact).abs().norm() / exact.abs().norm())
    on = float((op.A(coarse(fine))[0, 0] - exact).abs().norm() / exact.abs().norm())
    assert off < 5e-3 and on > 5 * off, (off, on)


def test_fine_renderings_are_the_loaders_images_up_to_rasterisation():
    for dataset, loader, floor in (("head_ct", recon.data.head_ct_phantoms, 45), ("brain", recon.data.brain_slices, 30)):
        truth, fine = fine_and_truth(dataset, 3, 32, "test", 0, factor=4)
        assert fine.shape == (3, 1, 128, 128) and torch.allclose(truth, fine.reshape(3, 1, 32, 4, 32, 4).mean((3, 5)))
        assert float(recon.metrics.psnr(truth, loader(3, 32, "test", 0)).min()) > floor
    with pytest.raises(ValueError, match="factor must be an integer >= 2"):
        fine_and_truth("head_ct", 1, 32, factor=1)
    with pytest.raises(ValueError, match=r"shape \(B, 1, f\*16, f\*16\)"):
        recon.ParallelBeamCT(16, 4).A_fine(torch.zeros(1, 1, 40, 40))
    with pytest.raises(NotImplementedError, match="no model of a continuous object"):
        recon.GaussianCS(16, 10).A_fine(torch.zeros(1, 1, 32, 32))


def test_poisson_ct_noise_follows_the_delta_method():
    """Counts ~ Poisson(I0 exp(-p)): the log estimate is unbiased to O(1/counts) and its variance is 1 / counts."""
    op = recon.ParallelBeamCT(32, 8)
    images = recon.data.head_ct_phantoms(1, 32, "test", 0).expand(400, -1, -1, -1).contiguous()
    clean = op.A(images)
    model = PoissonCT(flux=1e5)
    measured = simulate(op, images, model, seed=0)
    noisy, std = measured.y, measured.noise_std
    scale = model.mu_ref_per_mm * model.fov_mm / 32
    counts = 1e5 * torch.exp(-scale * clean[0].double())
    variance = ((noisy - clean).double() * scale).var(0)
    assert ((variance * counts).mean() - 1).abs() < 0.05  # var(log N) = 1 / E N
    assert float(((noisy - clean).mean(0).double() * scale).abs().max()) < 5 * float((1 / counts).max().sqrt()) / 20
    assert math.isclose(std, float((1 / counts).mean().sqrt()) / scale, rel_tol=1e-6)


def test_mri_snr_and_relative_noise_are_what_they_say():
    op = recon.CartesianMRI(32, 4, 0.125, seed=0)
    images = recon.data.brain_slices(2, 32, "test", 0)
    measured = simulate(op, images, ComplexGaussianMRI(snr=20), seed=1)
    noisy, std = measured.y, measured.noise_std
    foreground = images.flatten(1) > 0.1 * images.flatten(1).max(1, keepdim=True).values
    assert math.isclose(std * 20, float((images.flatten(1) * foreground).sum(1).div(foreground.sum(1)).mean()),
                        rel_tol=1e-6)
    residual = (noisy - op.A(images))[op.acquired(torch.ones_like(noisy)) != 0]
    assert abs(float(residual.real.std()) / std - 1) < 0.05 and abs(float(residual.imag.std()) / std - 1) < 0.05
    measured = simulate(op, images, RelativeGaussian(0.01), seed=1)
    noisy, std = measured.y, measured.noise_std
    assert math.isclose(std, relative_noise_std(op, op.A(images), 0.01), rel_tol=1e-6)
