"""A method describes itself (search space, budget option, cost per step, idle options) and measurements carry their
operator and noise model (recon.Measurement): what the tuner, the protocol and reconstruct() read from them."""

from __future__ import annotations

import pytest
import torch

import recon
from recon.methods import LANGEVIN_SNR, METHODS, Range
from recon.models import GaussianDenoiser
from recon.operators.noise import Measurement, PoissonCT, RelativeGaussian, simulate

SIZE = 16


@pytest.fixture(scope="module")
def setting():
    op = recon.ParallelBeamCT(SIZE, 5)
    prior = GaussianDenoiser(torch.full((1, SIZE, SIZE), 0.3), 0.02 * torch.eye(SIZE * SIZE))
    return op, prior, recon.data.head_ct_phantoms(2, SIZE, "test", 0)


def test_the_search_spaces_are_the_registrations_and_keep_their_numbers():
    assert METHODS["tv"].space_for({}) == {"weight": Range(1e-6, 1e-1, log=True)}
    assert METHODS["dps"].space_for({"steps": 30}) == {"zeta": Range(1e-2, 1e2, log=True)}
    assert METHODS["proximal"].space_for({}) == METHODS["proximal_ddrm"].space_for({}) == {"lam": Range(0.0, 1.0)}
    assert METHODS["tweedie"].space_for({}) == {"sigma": Range(0.005, 2.0, log=True), "lam": Range(0.0, 1.0)}
    assert list(METHODS["consistency"].space_for({"steps": 3})) == ["lam", "sigma_renoise", "shrink"]  # optuna's order
    assert METHODS["proximal"].space_for({"lam": 0.5}) == {} and METHODS["pinv"].space_for({}) == {}


def test_consistency_declares_which_options_its_settings_leave_idle():
    space = METHODS["consistency"].space_for
    assert set(space({})) == {"lam", "sigma_renoise"}  # the default two steps re-noise once: no shrink
    assert set(space({"steps": 1})) == {"lam"}
    assert set(space({"steps": 2, "guide": "replacement"})) == {"sigma_renoise"}
    assert set(space({"steps": 4, "lam": 1.0})) == {"sigma_renoise", "shrink"}


def test_the_predictor_corrector_adds_its_snr_unless_fixed():
    assert METHODS["proximal_ddrm"].space_for({"sampler": "pc"}) == {"lam": Range(0.0, 1.0), "snr": LANGEVIN_SNR}
    assert LANGEVIN_SNR == Range(0.01, 10.0, log=True)
    assert "snr" not in METHODS["proximal"].space_for({"sampler": "pc", "snr": 0.16})


def test_budget_options_spend_the_budget_at_the_cost_per_step():
    assert METHODS["proximal"].budget_options(60) == {"steps": 60} == METHODS["dps"].budget_options(60)
    assert METHODS["proximal"].budget_options(60, {"sampler": "pc"}) == {"steps": 30}
    assert METHODS["proximal"].budget_options(1, {"sampler": "pc"}) == {"steps": 1}  # at least one step
    assert METHODS["path"].budget_options(60, {"variant": "grid", "points": 3, "lateral": 1}) == {"steps": 5}
    assert METHODS["path"].budget_options(60, {"substeps": 2}) == {"steps": 20}
    assert METHODS["tv"].budget_options(60) == {} == METHODS["tweedie"].budget_options(60)
    with pytest.raises(ValueError, match="unknown sampler"):
        METHODS["proximal"].budget_options(60, {"sampler": "ddim"})


def test_nfe_predicts_the_records_count(setting):
    op, prior, images = setting
    y = op.A(images)
    runs = [("proximal", {"steps": 6}), ("proximal", {"steps": 6, "sampler": "pc"}), ("dps", {"steps": 4}),
            ("consistency", {"steps": 3}), ("tweedie", {}), ("path", {"steps": 3, "variant": "grid", "points": 2}),
            ("ddnm", {"steps": 5}), ("tv", {"iters": 5}), ("pinv", {})]
    for method, options in runs:
        _, record = recon.reconstruct(y, op, prior, method, **options)
        assert METHODS[method].nfe(options) == METHODS[method].nfe(record.settings) == record.nfe, method
    assert METHODS["proximal"].nfe({"steps": 6, "sampler": "heun"}) == 12  # one more than Heun's last level spends


def test_registration_checks_its_space_and_budget_against_the_options():
    with pytest.raises(ValueError, match=r"\['alpha', 'iters'\] are none of them"):
        recon.register_method("toy", space={"alpha": Range(0.0, 1.0)}, budget="iters")(
            lambda problem, *, steps=3: problem.y)
    assert "toy" not in METHODS
    with pytest.raises(ValueError, match="low < high"):
        Range(1.0, 0.0)
    with pytest.raises(ValueError, match="low > 0 with log=True"):
        Range(0.0, 1.0, log=True)
    assert "Searched: zeta in [0.01, 100] (log). Budget option: 'steps'." in recon.describe_methods()


def test_simulate_returns_a_measurement_with_the_draws_of_before(setting):
    op, _, images = setting
    m = simulate(op, images, RelativeGaussian(0.01), seed=3)
    clean = op.A(images)
    noisy, std = RelativeGaussian(0.01)(op, clean, images, torch.Generator().manual_seed(3))  # the old tuple path
    assert isinstance(m, Measurement) and m.operator is op and m.noise == RelativeGaussian(0.01)
    assert torch.equal(m.y, noisy) and m.noise_std == std > 0
    exact = simulate(op, images)
    assert torch.equal(exact.y, clean) and exact.noise is None and exact.noise_std == 0.0
    assert "noise-free" in repr(exact) and "Poisson" in simulate(op, images, PoissonCT(), seed=0).describe()
    assert m.to("cpu").y.device.type == "cpu" and m.to("cpu").operator is op


def test_a_measurement_refuses_what_contradicts_it(setting):
    op, _, images = setting
    with pytest.raises(ValueError, match="noise=None means noise-free"):
        Measurement(op.A(images), op, None, 0.1)
    with pytest.raises(ValueError, match="must have shape"):
        Measurement(images, op)


def test_reconstruct_takes_a_measurement_as_it_took_the_tensor(setting):
    op, prior, images = setting
    m = simulate(op, images, RelativeGaussian(0.01), seed=0)
    x, record = recon.reconstruct(m, prior=prior, method="proximal_ddrm", steps=3, seed=2)
    x_old, record_old = recon.reconstruct(m.y, op, prior, "proximal_ddrm", noise_std=m.noise_std, steps=3, seed=2)
    assert torch.equal(x, x_old) and record.settings == record_old.settings
    assert record.settings["noise_std"] == m.noise_std
    x_again, _ = recon.reconstruct(m, op, prior, "proximal_ddrm", noise_std=m.noise_std, steps=3, seed=2)
    assert torch.equal(x, x_again)  # its own operator and noise level may be restated
    _, record = recon.reconstruct(m.y, op, method="pinv")
    assert record.settings["noise_std"] == 0.0  # a tensor's data are exact unless the caller says otherwise


def test_a_noisy_measurement_cannot_run_noise_free_maths_by_omission(setting):
    op, prior, images = setting
    m = simulate(op, images, RelativeGaussian(0.01), seed=0)
    with pytest.raises(ValueError, match="treats y as exact.*proximal_ddrm"):
        recon.reconstruct(m, prior=prior, method="proximal", steps=2)
    with pytest.raises(ValueError, match="treats y as exact"):
        recon.reconstruct(m, prior=prior, method="ddnm", steps=2)
    with pytest.raises(ValueError, match="disagrees with the measurement's noise_std"):
        recon.reconstruct(m, prior=prior, method="proximal", noise_std=0, steps=2)
    with pytest.raises(ValueError, match="is not the measurement's own"):
        recon.reconstruct(m, recon.ParallelBeamCT(SIZE, 5), prior, "proximal_ddrm", steps=2)
    with pytest.raises(TypeError, match="needs the operator"):
        recon.reconstruct(m.y, prior=prior, method="proximal_ddrm", steps=2)
