"""The method registry behind reconstruct(): options, explicit zeros, the final projection, user methods."""

from __future__ import annotations

import pytest
import torch

import recon
from recon.baselines import tv_least_squares
from recon.models import GaussianDenoiser
from recon.random import generators, randn
from recon.sampling import SIGMA_MAX, SIGMA_MIN, get_sigmas_karras, sample_em

SIZE = 16


@pytest.fixture(scope="module")
def problem():
    op = recon.ParallelBeamCT(SIZE, 5)
    prior = GaussianDenoiser(torch.full((1, SIZE, SIZE), 0.3), 0.02 * torch.eye(SIZE * SIZE))
    x = recon.data.head_ct_phantoms(2, SIZE, "test", 0)
    return op, prior, op.A(x)


def test_an_explicit_zero_is_honoured(problem):
    op, prior, y = problem
    x, record = recon.reconstruct(y, op, prior, method="dps", steps=5, zeta=0.0, seed=3)
    gens = generators([3, 4])
    unguided = sample_em(prior, SIGMA_MAX * randn((2, 1, SIZE, SIZE), gens), get_sigmas_karras(5, SIGMA_MIN, SIGMA_MAX),
                         generator=gens)
    assert record.settings["zeta"] == 0.0 and torch.allclose(x, unguided.float(), atol=1e-6)
    _, record = recon.reconstruct(y, op, prior, method="proximal", steps=3, lam=0.0, final_projection=False)
    assert record.settings["lam"] == 0.0 and float(record.residual.min()) > 0.1  # lam = 0 ignores the data
    x, record = recon.reconstruct(y, op, method="tv", weight=0.0, iters=5)
    assert record.settings["weight"] == 0.0 and torch.allclose(x, tv_least_squares(op, y, 0.0, iters=5))


def test_the_final_projection_uses_the_callers_lam(problem):
    op, prior, y = problem
    half, _ = recon.reconstruct(y, op, prior, method="proximal", steps=4, lam=0.5, final_projection=False, seed=1)
    projected, record = recon.reconstruct(y, op, prior, method="proximal", steps=4, lam=0.5, seed=1)
    assert torch.allclose(projected, op.prox(half, y, 0.5), atol=1e-6) and float(record.residual.min()) > 1e-3
    _, record = recon.reconstruct(y, op, prior, method="proximal", steps=4, lam=1.0, seed=1)
    assert float(record.residual.max()) < 1e-4


def test_registering_a_taken_name_is_refused_and_options_are_listed():
    with pytest.raises(ValueError, match="registered already"):
        recon.register_method("tv")(lambda problem: None)
    with pytest.raises(TypeError, match="options without a default: \\['scale'\\]"):
        recon.register_method("scaled")(lambda problem, *, scale: None)
    assert recon.METHODS["tv"].defaults == {"weight": None, "iters": 300} and not recon.METHODS["tv"].needs_prior
    assert "proximal_ddrm" in recon.describe_methods() and "Kawar" in recon.METHODS["proximal_ddrm"].summary


def test_the_record_counts_network_evaluations_and_holds_the_settings_used(problem):
    op, prior, y = problem
    for sampler, nfe in (("em", 6), ("pc", 12), ("heun", 11)):
        _, record = recon.reconstruct(y, op, prior, method="proximal", steps=6, sampler=sampler)
        assert record.nfe == nfe, sampler
    assert record.settings["snr"] is None
    _, record = recon.reconstruct(y, op, prior, method="proximal", steps=2, sampler="pc")
    assert record.settings["snr"] == 0.16  # the corrector's default, as used


def test_song_et_als_step_refuses_noisy_data_unless_told_to_treat_it_as_exact(problem):
    op, prior, y = problem
    with pytest.raises(ValueError, match="treats y as exact.*proximal_ddrm"):
        recon.reconstruct(y, op, prior, method="proximal", noise_std=0.1, steps=2)
    recon.reconstruct(y, op, prior, method="proximal_ddrm", noise_std=0.1, steps=2)
