"""The realism measure: zero for what the prior is sure of, larger off the prior's support."""

from __future__ import annotations

import torch

from recon.models import GaussianDenoiser
from studies.realism import denoising_residual


def test_denoising_residual_ranks_off_prior_images_higher():
    n = 16
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0]
    variances = torch.cat([torch.ones(4), 1e-6 * torch.ones(n - 4)]).double()  # images live on a 4-d subspace
    cov = basis @ torch.diag(variances) @ basis.T
    prior = GaussianDenoiser(torch.zeros(1, 4, 4, dtype=torch.float64), cov)
    on = (basis[:, :4] @ torch.randn(4, 8, generator=g, dtype=torch.float64)).T.reshape(8, 1, 4, 4)
    off = on + 0.3 * (basis[:, 4:] @ torch.randn(n - 4, 8, generator=g, dtype=torch.float64)).T.reshape(8, 1, 4, 4)
    r_on = denoising_residual(prior, on, sigma=0.05, n_draws=8, generator=g)
    r_off = denoising_residual(prior, off, sigma=0.05, n_draws=8, generator=g)
    assert (r_off > 3 * r_on).all()
    again = denoising_residual(prior, on, sigma=0.05, n_draws=8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(again, r_on, rtol=0.5)
