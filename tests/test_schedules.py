"""Noise schedules obey the SDE moment equations; y_t has the right mean and covariance."""

from __future__ import annotations

import pytest
import torch

from recon.operators import GaussianCS, ParallelBeamCT
from recon.random import generators
from recon.sampling import SigmaSchedule, VESchedule, VPSchedule, y_t

SCHEDULES = [VESchedule(0.01, 50.0), VPSchedule(0.1, 20.0), SigmaSchedule()]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_moments_follow_the_sde(schedule):
    """alpha' = f alpha and (beta^2)' = 2 f beta^2 + g^2, by central differences."""
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    d_alpha = (schedule.alpha(t + h) - schedule.alpha(t - h)) / (2 * h)
    d_var = (schedule.beta(t + h) ** 2 - schedule.beta(t - h) ** 2) / (2 * h)
    assert torch.allclose(d_alpha, schedule.f(t) * schedule.alpha(t), rtol=1e-6, atol=1e-9)
    expected = 2 * schedule.f(t) * schedule.beta(t) ** 2 + schedule.g(t) ** 2
    assert torch.allclose(d_var, expected, rtol=1e-5)


def test_endpoints():
    ve, vp, _ = SCHEDULES
    assert float(ve.sigma(0.0)) == pytest.approx(0.01) and float(ve.sigma(1.0)) == pytest.approx(50.0)
    assert float(vp.beta(0.0)) == 0.0 and float(vp.alpha(1.0)) < 0.01
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        ve.beta(1.5)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        VESchedule(1.0, 0.5)
    assert float(SigmaSchedule().beta(7.5)) == 7.5  # the samplers' form: t is the noise level
    with pytest.raises(ValueError, match="noise level >= 0"):
        SigmaSchedule().beta(-1.0)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_y_t_mean_and_covariance(schedule):
    """y_t ~ N(alpha y, beta^2 A A^T): check both on a small Gaussian operator with many draws."""
    op = GaussianCS(4, 5, seed=0)
    y = op.A(torch.rand(1, 1, 4, 4, dtype=torch.float64)).expand(20000, -1)
    t = 0.4
    draws = y_t(y, op, schedule, t, generator=torch.Generator().manual_seed(0))
    alpha, beta = float(schedule.alpha(t)), float(schedule.beta(t))
    mean = draws.mean(0)
    cov = torch.cov(draws.T)
    expected = beta**2 * op.matrix @ op.matrix.T
    assert torch.allclose(mean, alpha * y[0], atol=4 * beta / 20000**0.5 * 3)
    assert (cov - expected).abs().max() < 0.05 * expected.abs().max()


def test_y_t_is_seeded_and_at_t0_close_to_y():
    op = ParallelBeamCT(16, 4)
    y = op.A(torch.rand(2, 1, 16, 16))
    ve = VESchedule(1e-4, 10.0)
    a = y_t(y, op, ve, torch.tensor([0.0, 0.5]), generator=torch.Generator().manual_seed(1))
    b = y_t(y, op, ve, torch.tensor([0.0, 0.5]), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert (a[0] - y[0]).abs().max() < 1e-2 * y.abs().max()
    with pytest.raises(ValueError, match=r"\(B,\) tensor"):
        y_t(y, op, ve, torch.tensor([0.1, 0.2, 0.3]))


def test_y_t_with_per_sample_generators_reproduces_each_sample():
    op = ParallelBeamCT(16, 4)
    y = op.A(torch.rand(3, 1, 16, 16))
    batch = y_t(y, op, SigmaSchedule(), 0.3, generator=generators([7, 8, 9]))
    assert torch.equal(batch[1:2], y_t(y[1:2], op, SigmaSchedule(), 0.3, generator=generators([8])))
