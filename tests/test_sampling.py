"""Samplers and the proximal guide on a Gaussian prior, where the denoiser is exact and the posterior is known."""

from __future__ import annotations

import pytest
import torch

from recon.guidance import DDRMProximalGuide, ProximalGuide
from recon.models import GaussianDenoiser
from recon.operators import GaussianCS
from recon.random import generators
from recon.sampling import get_sigmas_karras, sample_em, sample_heun, sample_pc

SIZE, M, N_SAMPLES = 4, 6, 4000


def gaussian_problem(seed=0, size=SIZE, m=M):
    """A prior whose covariance commutes with A^T A, so row- and null-space parts of x are independent."""
    g = torch.Generator().manual_seed(seed)
    op = GaussianCS(size, m, seed=seed)
    n = size * size
    AtA = op.matrix.T @ op.matrix
    _, V = torch.linalg.eigh(AtA)
    variances = 0.02 + 0.1 * torch.rand(n, generator=g, dtype=torch.float64)
    cov = V @ torch.diag(variances) @ V.T
    mean = 0.5 + 0.1 * torch.randn(1, 1, size, size, generator=g, dtype=torch.float64)
    x_true = mean + (V @ (variances.sqrt() * torch.randn(n, generator=g, dtype=torch.float64))).reshape(mean.shape)
    return op, GaussianDenoiser(mean[0], cov), x_true, V, variances


def posterior(op, prior, y, noise_std):
    """Closed-form posterior mean (n,) and covariance (n, n) of x given y = A x + N(0, noise_std^2)."""
    A = op.matrix
    cov, mean = prior.cov, prior.mean.reshape(-1)
    if noise_std == 0:
        pinv = torch.linalg.pinv(A)
        P = pinv @ A
        Q = torch.eye(A.shape[1], dtype=torch.float64) - P
        return pinv @ y.reshape(-1) + Q @ mean, Q @ cov @ Q.T
    gain = cov @ A.T @ torch.linalg.inv(A @ cov @ A.T + noise_std**2 * torch.eye(A.shape[0], dtype=torch.float64))
    return mean + gain @ (y.reshape(-1) - A @ mean), cov - gain @ A @ cov


def guide_for(op, y, noise_std, lam=1.0):
    """Song et al.'s step for noise-free data, the DDRM rule for noisy data."""
    return DDRMProximalGuide(op, y, noise_std, lam) if noise_std > 0 else ProximalGuide(op, y, lam)


def run(sampler, op, prior, y, noise_std, steps, **kwargs):
    guide = guide_for(op, y.expand(N_SAMPLES, -1), noise_std)
    sigmas = get_sigmas_karras(steps, 1e-3, 100.0)
    g = torch.Generator().manual_seed(1)
    x = sigmas[0] * torch.randn(N_SAMPLES, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    out = sampler(prior, x, sigmas, guide=guide, generator=g, **kwargs)
    return out.reshape(N_SAMPLES, -1)


@pytest.mark.parametrize("noise_std", [0.0, 0.05], ids=["noise-free", "noisy"])
def test_guided_em_samples_the_gaussian_posterior(noise_std):
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.measure(x_true, noise_std, torch.Generator().manual_seed(2))
    samples = run(sample_em, op, prior, y, noise_std, steps=1000)
    mean, cov = posterior(op, prior, y, noise_std)
    std = cov.diagonal().clamp_min(0).sqrt()
    # mean within 5 standard errors (plus a small discretisation allowance), covariance within 6 %
    assert ((samples.mean(0) - mean).abs() <= 5 * std / N_SAMPLES**0.5 + 2e-3).all()
    emp = torch.cov(samples.T)
    assert (emp - cov).abs().max() < 0.06 * cov.diagonal().max()


def test_without_noise_awareness_noisy_data_misses_the_posterior():
    """The exact projection pins the row-space part of x to A^+ y (noise included): the posterior's uncertainty
    there, which the noise-aware step reproduces, collapses to zero."""
    op, prior, x_true, _, _ = gaussian_problem()
    noise_std = 0.05
    y = op.measure(x_true, noise_std, torch.Generator().manual_seed(2))
    P = torch.linalg.pinv(op.matrix) @ op.matrix
    _, cov = posterior(op, prior, y, noise_std)
    posterior_row_variance = float(torch.trace(P @ cov @ P))
    naive = run(sample_em, op, prior, y, 0.0, steps=300)
    aware = run(sample_em, op, prior, y, noise_std, steps=300)
    assert float(torch.trace(P @ torch.cov(naive.T) @ P)) < 1e-3 * posterior_row_variance
    assert abs(float(torch.trace(P @ torch.cov(aware.T) @ P)) / posterior_row_variance - 1) < 0.1


@pytest.mark.parametrize("sampler,kwargs", [(sample_pc, {"snr": 0.1}), (sample_heun, {})], ids=["pc", "heun"])
def test_other_samplers_reach_the_posterior_mean_and_the_measurements(sampler, kwargs):
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true)
    samples = run(sampler, op, prior, y, 0.0, steps=200, **kwargs)
    mean, cov = posterior(op, prior, y, 0.0)
    std = cov.diagonal().clamp_min(0).sqrt()
    assert ((samples.mean(0) - mean).abs() <= 5 * std / N_SAMPLES**0.5 + 2e-3).all()
    # each sample matches y_t at the last level (noise sigma_min A z); the noise averages out over samples
    residual = op.A(samples.reshape(-1, 1, SIZE, SIZE)) - y
    assert residual.abs().max() < 0.05 and residual.mean(0).abs().max() < 1e-3


def test_unguided_em_samples_the_prior():
    _, prior, _, _, _ = gaussian_problem()
    sigmas = get_sigmas_karras(500, 1e-3, 100.0)
    g = torch.Generator().manual_seed(3)
    x = sigmas[0] * torch.randn(N_SAMPLES, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    samples = sample_em(prior, x, sigmas, generator=g).reshape(N_SAMPLES, -1)
    assert (samples.mean(0) - prior.mean.reshape(-1)).abs().max() < 0.03
    assert (torch.cov(samples.T) - prior.cov).abs().max() < 0.06 * prior.cov.diagonal().max()


def test_per_sample_seeds_make_a_batch_reproduce_each_image():
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true).expand(3, -1)
    sigmas = get_sigmas_karras(20, 1e-3, 100.0)

    def draw(seeds, yy):
        gens = generators(seeds)
        x = torch.stack([sigmas[0] * torch.randn(1, SIZE, SIZE, generator=g, dtype=torch.float64) for g in gens])
        return sample_em(prior, x, sigmas, guide=ProximalGuide(op, yy, 1.0), generator=gens)

    batch = draw([5, 6, 7], y)
    assert torch.allclose(batch[1:2], draw([6], y[:1]), atol=1e-12)
    assert torch.equal(batch, draw([5, 6, 7], y))


def test_callback_sees_every_step_and_guide_validates_lam():
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true)
    seen = []
    sigmas = get_sigmas_karras(7, 1e-3, 10.0)
    sample_em(prior, sigmas[0] * torch.randn(1, 1, SIZE, SIZE, dtype=torch.float64), sigmas,
              guide=ProximalGuide(op, y, 0.5), callback=seen.append, generator=torch.Generator().manual_seed(0))
    assert [s["i"] for s in seen] == list(range(7)) and seen[-1]["sigma_next"] == 0.0
    assert set(seen[0]) == {"i", "sigma", "sigma_next", "x", "x_guided", "denoised", "x_next"}
    assert torch.equal(seen[1]["x"], seen[0]["x_next"]) and not torch.equal(seen[0]["x"], seen[0]["x_guided"])
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        ProximalGuide(op, y, 1.2)


def test_a_lambda_sweep_runs_as_one_batch():
    """lam of shape (B,) with per-sample seeds: one batched pass equals one pass per value."""
    op, prior, x_true, _, _ = gaussian_problem()
    lams = torch.tensor([0.0, 0.25, 0.9, 1.0], dtype=torch.float64)
    y = op.A(x_true).expand(len(lams), -1)
    sigmas = get_sigmas_karras(15, 1e-3, 100.0)

    def draw(seeds, yy, lam):
        gens = generators(seeds)
        x = torch.stack([sigmas[0] * torch.randn(1, SIZE, SIZE, generator=g, dtype=torch.float64) for g in gens])
        return sample_em(prior, x, sigmas, guide=ProximalGuide(op, yy, lam), generator=gens)

    batch = draw([3] * len(lams), y, lams)
    for i, lam in enumerate(lams.tolist()):
        assert torch.allclose(batch[i : i + 1], draw([3], y[:1], lam), atol=1e-12)
    assert not torch.allclose(batch[0], batch[-1])


def test_ddrm_guide_needs_a_spectrum():
    from registry import CGOnlyCT

    op = CGOnlyCT(12, 6)
    y = op.A(torch.zeros(1, 1, 12, 12))
    with pytest.raises(ValueError, match="needs a spectral decomposition"):
        DDRMProximalGuide(op, y, 0.1)
    ProximalGuide(op, y, 1.0)  # Song et al.'s step works through CGLS
