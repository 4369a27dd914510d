"""The generalisation gap of the priors the book's studies use: denoising PSNR on training draws against held-out
draws of the same family (benchmarks/prior_gap.py prints the full table). The brain prior that memorised its slabs is
the positive control: the check must see its gap."""

import pytest
import torch

import recon
from recon.data.families import get_family
from recon.models.checkpoints import load_card
from recon.models.denoiser import denoising_psnr
from studies.protocol import PRIORS

BOUND_DB = 1.5  # train minus held-out, sigma = 0.05, 16 images each: the brain prior that memorised shows 11.9
N, SIGMA = 16, 0.05


def gap(name: str) -> float:
    card = load_card(name)
    config, family = card["config"], get_family(card["config"]["data"])
    train = family.images(N, 64, config["split"], config["seed"])
    held_out = family.images(N, 64, "test", 0)
    prior = recon.load_prior(name)
    return float(denoising_psnr(prior, train, SIGMA).mean() - denoising_psnr(prior, held_out, SIGMA).mean())


@pytest.mark.parametrize("name", sorted(set(PRIORS.values())))
def test_the_studies_priors_generalise_to_held_out_draws(name):
    assert gap(name) <= BOUND_DB, f"{name} denoises its training draws far better than held-out ones"


def test_the_check_sees_a_memorising_prior():
    assert gap("brain") > 3 * BOUND_DB


def test_denoising_psnr_uses_the_same_noise_for_every_denoiser():
    images = torch.rand(3, 1, 8, 8)
    identity = lambda x, sigma: x  # (the noisy input itself: PSNR fixed by the noise draw)
    assert torch.equal(denoising_psnr(identity, images, 0.1, seed=4), denoising_psnr(identity, images, 0.1, seed=4))
    assert not torch.equal(denoising_psnr(identity, images, 0.1, seed=4), denoising_psnr(identity, images, 0.1, seed=5))
