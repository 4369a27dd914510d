"""Guides over the samplers: Song et al.'s step is the operator's prox toward y_t, DPS is Chung et al.'s update, the
DDRM rule's exactness is limited to priors that commute with A^T A (and the bias elsewhere is recorded)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_sampling import gaussian_problem

from recon.guidance import (
    Compose,
    DDRMProximalGuide,
    DPSGuide,
    EstimateProjectionGuide,
    Guide,
    ProximalGuide,
    StepContext,
    guided_denoise,
)
from recon.models import GaussianDenoiser
from recon.operators import MatrixOperator
from recon.random import generators
from recon.sampling import get_sigmas_karras, sample_em, sample_heun


def test_proximal_guide_is_the_operators_prox_toward_y_t():
    op, _, x_true, _, _ = gaussian_problem()
    y = op.A(x_true).expand(2, -1)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    lam, sigma = torch.tensor([0.3, 1.0], dtype=torch.float64), 0.7
    guided = ProximalGuide(op, y, lam).before(x, StepContext(0, sigma, 0.5, torch.Generator().manual_seed(9)))
    z = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.allclose(guided, op.prox(x, y + sigma * op.A(z), lam), atol=1e-12)


def test_ddrm_rule_without_noise_is_song_et_als_step():
    op, _, x_true, _, _ = gaussian_problem()
    y = op.A(x_true).expand(3, -1)
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    def ctx():
        return StepContext(0, 0.4, 0.3, generators([1, 2, 3]))

    assert torch.equal(DDRMProximalGuide(op, y, 0.0, 0.8).before(x, ctx()), ProximalGuide(op, y, 0.8).before(x, ctx()))
    spectral = MatrixOperator(op.matrix, (4, 4))
    spectral.spectrum = None  # no decomposition: the noise-free rule still runs (through CG), the noisy one cannot
    DDRMProximalGuide(spectral, y, 0.0).before(x, ctx())
    with pytest.raises(ValueError, match="needs a spectral decomposition"):
        DDRMProximalGuide(spectral, y, 0.1)


def test_dps_step_is_chung_et_als_update():
    """One Euler–Maruyama step with the DPS guide against the update written out: x + dvar score + sqrt(dvar) z
    - zeta / ||y - A D|| * grad ||y - A D||^2, with the gradient of the Gaussian denoiser in closed form."""
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true).expand(2, -1)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sigma, sigma_next, zeta = 0.6, 0.4, 0.05
    out = sample_em(prior, x, torch.tensor([sigma, sigma_next]), guide=DPSGuide(op, y, zeta),
                    generator=torch.Generator().manual_seed(4))
    denoised = prior(x, sigma)
    jacobian = prior.cov @ torch.linalg.inv(prior.cov + sigma**2 * torch.eye(16, dtype=torch.float64))
    residual = y - op.A(denoised)
    grad = -2 * (op.A_adjoint(residual).reshape(2, -1) @ jacobian).reshape(x.shape)  # J symmetric
    dvar = sigma**2 - sigma_next**2
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    step = zeta / residual.norm(dim=1).reshape(-1, 1, 1, 1)
    expected = x + dvar * (denoised - x) / sigma**2 + math.sqrt(dvar) * z - step * grad
    assert torch.allclose(out, expected, atol=1e-10)


def test_dps_fits_the_data_more_as_zeta_grows_and_zeta_zero_samples_the_prior():
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true).expand(64, -1)
    sigmas = get_sigmas_karras(40, 1e-3, 100.0)

    def draw(guide):
        gens = generators(range(64))
        x = torch.stack([sigmas[0] * torch.randn(1, 4, 4, generator=g, dtype=torch.float64) for g in gens])
        return sample_em(prior, x, sigmas, guide=guide, generator=gens)

    # within the stable range: much larger steps overshoot (zeta = 0.1 here), as DPS is known to
    residuals = [float((op.A(draw(DPSGuide(op, y, zeta))) - y).norm(dim=1).mean()) for zeta in (0.0, 0.003, 0.01, 0.03)]
    assert all(a > b for a, b in itertools.pairwise(residuals)), residuals
    assert torch.equal(draw(DPSGuide(op, y, 0.0)), draw(None))  # test_unguided_em_samples_the_prior covers None
    with pytest.raises(ValueError, match="zeta must be >= 0"):
        DPSGuide(op, y, -1.0)


def test_the_estimate_projection_steers_the_sampler_to_the_data():
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true).expand(8, -1)
    sigmas = get_sigmas_karras(30, 1e-3, 3.0)
    x0 = 3 * torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = []
    guided = sample_heun(prior, x0, sigmas, guide=EstimateProjectionGuide(op, y), callback=seen.append)
    free = sample_heun(prior, x0, sigmas)
    assert all(float((op.A(s["denoised"]) - y).abs().max()) < 1e-10 for s in seen)  # the step used the projection
    assert float((op.A(guided) - y).norm()) < 0.05 * float((op.A(free) - y).norm())


class Shift(Guide):
    def __init__(self, amount):
        self.amount = amount

    def before(self, x, ctx):
        return x + self.amount

    def after(self, x, denoised, ctx):
        return denoised * self.amount


def test_compose_runs_hooks_in_order_and_adds_corrections():
    ctx = StepContext(0, 1.0, 0.5)
    guide = Compose(Shift(1.0), Shift(3.0))
    assert float(guide.before(torch.zeros(1), ctx)) == 4.0 and float(guide.after(None, torch.ones(1), ctx)) == 3.0
    op, prior, x_true, _, _ = gaussian_problem()
    y = op.A(x_true)
    x = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    single = guided_denoise(prior, x, ctx, DPSGuide(op, y, 0.1))[2]
    double = guided_denoise(prior, x, ctx, Compose(DPSGuide(op, y, 0.1), Guide(), DPSGuide(op, y, 0.1)))[2]
    assert torch.allclose(double, 2 * single, atol=1e-12)


def test_the_proximal_steps_are_biased_when_the_prior_couples_measured_and_unmeasured_pixels():
    """x ~ N(0, [[1, rho], [rho, 1]]) on two pixels (two more independent ones pad the image), x_1 observed as 1,
    rho = 0.5: the posterior of x_2 has mean 0.5 and variance 0.75 (0.495 and 0.7525 with noise 0.1). Song et al.'s
    step and the DDRM rule both give mean 0.26 and variance 0.80 over 4000 samples with 1000 Euler–Maruyama steps:
    they see the coupling only through the prior's score at the noisy level, and replacing x_1 by y_t at every step
    weakens it. Exactness needs a prior covariance that commutes with A^T A (test_sampling)."""
    rho, n = 0.5, 4000
    cov = torch.eye(4, dtype=torch.float64)
    cov[0, 1] = cov[1, 0] = rho
    prior = GaussianDenoiser(torch.zeros(1, 2, 2, dtype=torch.float64), cov)
    op = MatrixOperator(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), (2, 2))
    y = torch.ones(n, 1, dtype=torch.float64)
    sigmas = get_sigmas_karras(1000, 1e-3, 100.0)
    for guide, posterior_mean in ((ProximalGuide(op, y), 0.5), (DDRMProximalGuide(op, y, 0.1), 0.495)):
        g = torch.Generator().manual_seed(0)
        x2 = sample_em(prior, sigmas[0] * torch.randn(n, 1, 2, 2, generator=g, dtype=torch.float64), sigmas,
                       guide=guide, generator=g).reshape(n, -1)[:, 1]
        assert abs(float(x2.mean()) - 0.26) < 0.04 and float(x2.mean()) < posterior_mean - 0.2
        assert abs(float(x2.var()) - 0.80) < 0.04
