"""The path-guided steps (recon.guidance.path) and the exact Gaussian-mixture prior they are pictured with."""

import itertools

import numpy as np
import pytest
import torch

import recon
from recon.guidance import StepContext
from recon.guidance.path import (
    PathGridGuide,
    ReusingDenoiser,
    agreement,
    best_path,
    evaluations_per_step,
    layered_edges,
    score_filtered_step,
    segment_gains,
)
from recon.models.denoiser import GaussianDenoiser
from recon.models.mixture import GaussianMixture, GaussianMixtureDenoiser
from recon.operators.gaussian import MatrixOperator


def test_agreement_keeps_the_share_of_each_residual_that_the_move_covers():
    residual = torch.tensor([[1.0, 1.0, -2.0, 0.0, 4.0]])
    move = torch.tensor([[0.5, -1.0, -4.0, 3.0, 1.0]])
    assert torch.allclose(agreement(move, residual), torch.tensor([[0.5, 0.0, 1.0, 0.0, 0.25]]))
    residual_c = torch.tensor([[1j, 2 + 0j]])
    move_c = torch.tensor([[0.5j + 3, -1 + 0j]])  # along 1j: 0.5 of it; against 2: none
    assert torch.allclose(agreement(move_c, residual_c), torch.tensor([[0.5, 0.0]]))


def test_the_filtered_step_is_the_exact_step_where_the_prior_agrees_and_no_step_where_it_does_not():
    op = recon.GaussianCS(4, n_measurements=6, seed=0)
    g = torch.Generator().manual_seed(0)
    x, target_image = torch.rand(2, 1, 4, 4, generator=g), torch.rand(2, 1, 4, 4, generator=g)
    target = op.A(target_image)
    projected = op.prox(x, target, 1.0)
    beyond = x + 2 * (projected - x)  # a prior that overshoots the hyperplane in every measurement
    assert torch.allclose(score_filtered_step(x, beyond, target, op), projected, atol=1e-5)
    assert torch.allclose(score_filtered_step(x, x - (projected - x), target, op), x)
    halfway = score_filtered_step(x, x + 0.5 * (projected - x), target, op)
    assert torch.allclose(halfway, op.prox(x, target, 0.5), atol=1e-5)


def test_best_path_is_the_path_of_largest_total_gain():
    rng = np.random.default_rng(0)
    points, lanes = 4, 3
    edges = layered_edges(points, lanes)
    gains = rng.normal(size=len(edges))
    index = {e: i for i, e in enumerate(edges)}
    best, best_gain = None, -np.inf
    for lane_choice in itertools.product(range(lanes), repeat=points):
        nodes = [1] + [k * lanes + j for k, j in enumerate(lane_choice, start=1)]
        if all((a, b) in index for a, b in itertools.pairwise(nodes)):
            total = sum(gains[index[(a, b)]] for a, b in itertools.pairwise(nodes))
            if total > best_gain:
                best, best_gain = nodes, total
    n = (points + 1) * lanes
    assert best_path(gains, edges, n, 1, list(range(n - lanes, n))) == best


def test_the_grid_stops_where_the_prior_is_most_likely_on_the_segment():
    """A Gaussian prior's score is linear, so the trapezoid rule is exact and the stop is the grid point of largest
    log-density on the segment from x to the hyperplane."""
    cov = torch.tensor([[1.0, 0.8, 0.0, 0.0], [0.8, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 2.0]],
                       dtype=torch.float64)
    mixture = GaussianMixture(torch.ones(1), torch.zeros(1, 4), cov[None], (1, 2, 2))
    op = MatrixOperator(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]), (2, 2))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 1, 2, 2, generator=g, dtype=torch.float64)
    y = op.A(torch.randn(16, 1, 2, 2, generator=g, dtype=torch.float64))
    sigma, points = 0.3, 8
    guide = PathGridGuide(op, y, GaussianMixtureDenoiser(mixture), points=points)
    out = guide.before(x, StepContext(0, sigma, 0.2, torch.Generator().manual_seed(7)))
    target = recon.sampling.conditional.y_t(y, op, recon.guidance.proximal.SIGMA_FORM, sigma,
                                            torch.Generator().manual_seed(7))
    direction = op.A_pinv(target - op.A(x))
    noised = mixture.noised(sigma)
    for b in range(16):
        candidates = torch.stack([x[b] + k / points * direction[b] for k in range(points + 1)])
        best = candidates[int(noised.log_density(candidates).argmax())]
        assert torch.allclose(out[b], best, atol=1e-10)


def test_segment_gains_integrate_the_score():
    mixture = GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None], (1, 2))
    nodes = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]]], dtype=torch.float64)
    scores = mixture.score(nodes.reshape(3, 2)).reshape(1, 3, 2)
    gains = segment_gains(nodes, scores, [(0, 1), (1, 2)])
    log_p = mixture.log_density(nodes.reshape(3, 2))
    assert torch.allclose(gains[0], torch.stack([log_p[1] - log_p[0], log_p[2] - log_p[1]]))


def test_path_methods_count_every_evaluation_and_reuse_the_chosen_node():
    op = recon.GaussianCS(4, n_measurements=6, seed=0)
    prior = GaussianDenoiser(torch.full((1, 4, 4), 0.5), 0.05 * torch.eye(16))
    y = op.A(torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    _, record = recon.reconstruct(y, op, prior, method="path", variant="filter", substeps=2, steps=5, history=True)
    assert record.nfe == 5 * 3 == 5 * evaluations_per_step("filter", substeps=2)
    assert len(record.settings["history"]) == 5 * 2  # one entry per substep: (sigma, share of the way taken)
    assert all(0.0 <= share <= 1.0 + 1e-6 for _, share in record.settings["history"])
    _, record = recon.reconstruct(y, op, prior, method="path", variant="grid", points=3, lateral=1, steps=5)
    assert record.nfe == 5 * 4 * 3 == 5 * evaluations_per_step("grid", points=3, lateral=1)  # chosen node reused
    _x, record = recon.reconstruct(y, op, prior, method="path", steps=5)
    assert float(record.residual.max()) < 1e-4  # the final projection
    with pytest.raises(ValueError, match="unknown path variant"):
        recon.reconstruct(y, op, prior, method="path", variant="straight")


def test_reusing_denoiser_hands_over_the_estimate_at_the_point_and_level_it_was_told_about():
    calls = []
    reuse = ReusingDenoiser(lambda x, s: calls.append(s) or x * 0)
    x = torch.ones(2, 1, 2, 2)
    reuse.remember(x, 0.5, x * 7)
    assert float(reuse(x.clone(), 0.5).mean()) == 7 and calls == []  # keyed by value, not by tensor identity
    assert float(reuse(x, 0.5).mean()) == 0 and calls == [0.5]  # a memo is used once
    for other, sigma in ((x + 1, 0.5), (x, 0.25), (x[:1], 0.5)):
        reuse.remember(x, 0.5, x * 7)
        assert float(reuse(other, sigma).mean()) == 0


def test_a_single_gaussian_mixture_is_the_gaussian_denoiser_and_its_posterior_is_the_closed_form():
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64)
    mean = torch.tensor([0.3, -0.2], dtype=torch.float64)
    mixture = GaussianMixture(torch.ones(1), mean[None], cov[None], (1, 2))
    x = torch.randn(5, 1, 1, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = GaussianDenoiser(mean.reshape(1, 1, 2), cov)
    assert torch.allclose(GaussianMixtureDenoiser(mixture)(x, 0.7), exact(x, 0.7))
    post = mixture.posterior(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0]))
    assert torch.allclose(post.means[0], torch.tensor([1.0, -0.2 + 0.5 * 0.7], dtype=torch.float64))
    assert abs(float(post.covs[0, 1, 1]) - (2.0 - 0.25)) < 1e-9


def test_the_mixture_posterior_matches_weighting_prior_samples_by_the_likelihood():
    mixture = GaussianMixture(torch.tensor([0.3, 0.7]), torch.tensor([[-1.0, 1.0], [1.5, 0.0]]),
                              torch.stack([0.2 * torch.eye(2), torch.tensor([[0.5, -0.3], [-0.3, 0.4]])]), (1, 2))
    matrix, y, noise = torch.tensor([[1.0, 1.0]], dtype=torch.float64), torch.tensor([0.4], dtype=torch.float64), 0.3
    samples = mixture.sample(400_000, torch.Generator().manual_seed(0)).reshape(-1, 2)
    weights = torch.exp(-0.5 * ((samples @ matrix.T - y) ** 2).sum(1) / noise**2)
    weighted_mean = (weights[:, None] * samples).sum(0) / weights.sum()
    assert torch.allclose(mixture.posterior(matrix, y, noise).mean().flatten(), weighted_mean, atol=0.01)
