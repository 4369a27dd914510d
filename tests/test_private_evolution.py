"""Private Evolution (studies.private_evolution): its accounting is the Gaussian mechanism's, its votes are nearest
neighbours plus noise, and with little noise it moves a public prior's samples towards the private images, while with
noise that drowns the votes it leaves them where the prior put them."""

import math

import pytest
import torch

from recon.models.denoiser import GaussianDenoiser
from studies.private_evolution import (
    Evolution,
    delta_of,
    epsilon_of,
    noisy_votes,
    pooled_features,
    private_evolution,
    sigma_for,
)


def test_the_accounting_is_the_composed_gaussian_mechanism():
    assert delta_of(1.0, 1.0) == pytest.approx(0.3085375 - math.e * 0.0668072, abs=1e-6)  # Phi(-1/2) - e Phi(-3/2)
    epsilon = epsilon_of(2.0, 4, 1e-5)  # four rounds at sigma 2: mu = 1
    assert delta_of(epsilon, 1.0) == pytest.approx(1e-5, rel=1e-6)
    assert epsilon_of(4.0, 4, 1e-5) < epsilon < epsilon_of(2.0, 9, 1e-5)  # more noise less, more rounds more
    assert sigma_for(epsilon, 4, 1e-5) == pytest.approx(2.0, rel=1e-6)
    from prv_accountant import GaussianMechanism, PRVAccountant  # an independent, numerical accountant

    accountant = PRVAccountant(prvs=GaussianMechanism(noise_multiplier=2.0), max_self_compositions=4, eps_error=0.01,
                               delta_error=1e-9)
    low, _, high = accountant.compute_epsilon(delta=1e-5, num_self_compositions=4)
    assert low <= epsilon <= high
    assert Evolution(8, (0.2, 0.1), sigma=2.0, threshold=1.0).votes == 3
    with pytest.raises(ValueError, match="sigma > 0"):
        epsilon_of(0.0, 1, 1e-5)


def test_votes_are_nearest_neighbour_counts_cut_at_the_threshold():
    candidates = torch.tensor([[0.0], [1.0], [5.0]])
    private = torch.tensor([[0.1], [0.2], [0.9], [-0.3]])
    exact = noisy_votes(private, candidates, sigma=0.0, threshold=0.0, generator=torch.Generator())
    assert exact.tolist() == [3.0, 1.0, 0.0]
    cut = noisy_votes(private, candidates, sigma=0.0, threshold=2.0, generator=torch.Generator())
    assert cut.tolist() == [3.0, 0.0, 0.0]


def test_little_noise_moves_the_population_towards_the_private_images_and_much_noise_does_not():
    size, shift = 4, 0.15
    prior = GaussianDenoiser(torch.full((1, size, size), 0.5), 0.02 * torch.eye(size * size, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    private = (0.5 + shift + 0.14 * torch.randn(32, 1, size, size, generator=g)).clamp(0, 1)
    features = lambda x: pooled_features(x, size)
    moved = private_evolution(prior, private, Evolution(64, (0.1, 0.1, 0.1, 0.1), sigma=0.5, threshold=1.0),
                              seed=0, features=features)
    drowned = private_evolution(prior, private, Evolution(64, (0.1, 0.1, 0.1, 0.1), sigma=1e4, threshold=1e5),
                                seed=0, features=features)
    assert moved.shape == (64, 1, size, size)
    assert float(moved.mean()) - 0.5 > shift / 2 and abs(float(drowned.mean()) - 0.5) < shift / 3


def test_settings_at_an_epsilon_spend_exactly_that_budget():
    settings = Evolution.at_epsilon(8, (0.3, 0.2, 0.1), 4.0, 1e-5, threshold_sigmas=2.0)
    assert settings.votes == 4 and settings.epsilon(1e-5) == pytest.approx(4.0, rel=1e-6)
    assert settings.threshold == pytest.approx(2.0 * settings.sigma)
