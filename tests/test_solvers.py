"""Today's solvers (recon/solvers.py): their data steps are the closed forms they claim, they run through
`recon.reconstruct` on both operators at one network evaluation per level, reproducibly, and a warm start starts
where it says."""

import pytest
import torch

import recon
from recon.methods import METHODS, Problem
from recon.random import generators
from recon.solvers import conjugate_gradient, weighted_prox

SOLVERS = ["diffpir", "dds", "red_diff", "daps"]


def gaussian_prior(size: int):
    return recon.models.GaussianDenoiser(torch.full((1, size, size), 0.4), 0.03 * torch.eye(size * size))


def problems(size: int = 16):
    images = recon.data.head_ct_phantoms(2, size, "test", 0)
    for op in (recon.ParallelBeamCT(size, 6), recon.CartesianMRI(size, 4, 0.25, seed=0)):
        yield op, images, op.A(images)


def test_the_weighted_prox_spans_projection_to_identity():
    for op, x, y in problems():
        z = torch.rand_like(x)
        p = Problem(y, op, None, 0.0, generators([0, 1]))
        assert torch.allclose(weighted_prox(p, z, 0.0), op.prox(z, y, 1.0), atol=1e-4)
        assert torch.allclose(weighted_prox(p, z, 1e9), z, atol=1e-4)
        middle = weighted_prox(p, z, 1.0)  # the minimiser: the gradient of the objective vanishes there
        gradient = op.A_adjoint(op.A(middle) - y).real + (middle - z)
        assert gradient.abs().max() < 1e-3


def test_conjugate_gradient_reaches_the_least_squares_solution_and_stops_there():
    for op, x, y in problems():
        z = torch.rand_like(x)
        p = Problem(y, op, None, 0.0, generators([0, 1]))
        solved = conjugate_gradient(p, z, 300)
        assert (op.A(solved) - y).abs().norm() < 1e-3 * y.abs().norm()
        assert torch.isfinite(conjugate_gradient(p, z, 1000)).all()  # converged images take no more steps


@pytest.mark.parametrize("method", SOLVERS)
def test_every_solver_runs_at_one_evaluation_per_level_reproducibly(method):
    for op, x, y in problems():
        prior = gaussian_prior(16)
        out, record = recon.reconstruct(y, op, prior, method=method, steps=6, seed=3)
        again, _ = recon.reconstruct(y, op, prior, method=method, steps=6, seed=3)
        assert out.shape == x.shape and torch.isfinite(out).all() and torch.equal(out, again)
        assert record.nfe == 6 == METHODS[method].nfe(record.settings)
        assert METHODS[method].budget_options(30) == {"steps": 30}


@pytest.mark.parametrize("method", ["diffpir", "dds"])
def test_the_estimate_based_solvers_fit_exact_data(method):
    op, _, y = next(problems())
    options = {"lam": 1e-3} if method == "diffpir" else {"cg_iters": 50}
    out, _ = recon.reconstruct(y, op, gaussian_prior(16), method=method, steps=8, seed=0, **options)
    assert (op.A(out) - y).abs().norm() < 0.05 * y.abs().norm()


def test_a_warm_start_begins_at_the_pseudo_inverse_plus_noise():
    op, _, y = next(problems())
    seen = []
    recon.reconstruct(y, op, gaussian_prior(16), method="diffpir", steps=4, seed=0, start_sigma=0.2,
                      callback=seen.append)
    assert seen[0]["sigma"] == pytest.approx(0.2)
    assert (seen[0]["x"] - op.A_pinv(y)).std() == pytest.approx(0.2, rel=0.25)
    with pytest.raises(ValueError, match="start_sigma must lie in"):
        recon.reconstruct(y, op, gaussian_prior(16), method="dds", steps=4, start_sigma=1e3)


def test_mixing_weights_are_checked():
    op, _, y = next(problems())
    with pytest.raises(ValueError, match="zeta must lie in"):
        recon.reconstruct(y, op, gaussian_prior(16), method="diffpir", steps=2, zeta=1.5)


# On a Gaussian prior whose covariance commutes with A^T A (tests/test_sampling.py), the denoiser is exact and the
# posterior known in closed form. In the deterministic limit (no fresh noise: DiffPIR's zeta = 0, DDS's eta = 0) and
# with many levels the estimate-based solvers follow the probability-flow ODE with the data step on the estimate,
# which samples that posterior; fresh noise (zeta = 1), DAPS's Gaussian stand-in for p(x0 | x_t) and RED-diff's
# optimisation keep the posterior mean but not its spread.
N_POSTERIOR, LEVELS = 2000, 200


def posterior_draws(method: str, noise_std: float, **options):
    from test_sampling import gaussian_problem, posterior

    op, prior, x_true, _, _ = gaussian_problem()
    y = op.measure(x_true, noise_std, torch.Generator().manual_seed(2))
    x, _ = recon.reconstruct(y.expand(N_POSTERIOR, -1), op, prior, method=method, steps=LEVELS,
                             seed=list(range(N_POSTERIOR)), noise_std=noise_std, **options)
    mean, cov = posterior(op, prior, y, noise_std)
    draws = x.reshape(N_POSTERIOR, -1).double()
    standard_error = cov.diagonal().clamp_min(0).sqrt() / N_POSTERIOR**0.5
    return draws, mean, cov, standard_error


@pytest.mark.parametrize("method,noise_std,options", [
    ("diffpir", 0.0, {"lam": 1e-6, "zeta": 0.0}), ("diffpir", 0.05, {"lam": 1.0, "zeta": 0.0}),
    ("dds", 0.0, {"eta": 0.0, "cg_iters": 20})], ids=["diffpir-noise-free", "diffpir-noisy", "dds-noise-free"])
def test_without_fresh_noise_the_estimate_based_solvers_sample_the_gaussian_posterior(method, noise_std, options):
    draws, mean, cov, standard_error = posterior_draws(method, noise_std, **options)
    # mean within 5 standard errors (plus a discretisation allowance), covariance within 8 % of the largest variance
    assert ((draws.mean(0) - mean).abs() <= 5 * standard_error + 2e-3).all()
    assert (torch.cov(draws.T) - cov).abs().max() < 0.08 * cov.diagonal().max()


@pytest.mark.parametrize("method,noise_std,options,spread", [
    ("diffpir", 0.0, {"lam": 1e-6, "zeta": 1.0}, (0.4, 0.6)),
    ("daps", 0.0, {"s": 0.01, "step": 0.3, "langevin": 5}, (0.45, 0.7)),
    ("daps", 0.05, {"step": 0.3, "langevin": 5}, (0.55, 0.85)), ("red_diff", 0.0, {"lam": 0.25}, (0.25, 0.45))],
    ids=["diffpir-fresh-noise", "daps-noise-free", "daps-noisy", "red-diff"])
def test_the_other_solvers_keep_the_posterior_mean_and_shrink_its_spread(method, noise_std, options, spread):
    """The measured spread (trace of the draws' covariance over the posterior's) pins what each does to it."""
    draws, mean, cov, standard_error = posterior_draws(method, noise_std, **options)
    assert ((draws.mean(0) - mean).abs() <= 5 * standard_error + 3e-3).all()
    low, high = spread
    assert low < float(torch.cov(draws.T).trace() / cov.trace()) < high


@pytest.mark.parametrize("method,option,weights", [
    ("diffpir", "lam", (100.0, 1.0, 0.01)), ("dds", "cg_iters", (1, 3, 10)), ("red_diff", "lam", (5.0, 0.5, 0.05)),
    ("daps", "s", (0.3, 0.1, 0.03))])
def test_the_data_residual_falls_as_the_data_weight_grows(method, option, weights):
    for op, _, y in problems():
        residuals = []
        for weight in weights:  # from the weakest data weight to the strongest
            out, _ = recon.reconstruct(y, op, gaussian_prior(16), method=method, steps=12, seed=0, **{option: weight})
            residuals.append(float((op.A(out) - y).abs().norm() / y.abs().norm()))
        # strictly lower, but for a step already exact (one CG step inverts the MRI mask)
        assert residuals[0] > residuals[1] >= residuals[2] - 1e-6, (type(op).__name__, residuals)
