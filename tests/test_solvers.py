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
