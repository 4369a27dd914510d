"""DP-SGD: the noise calibration, two accountants against each other and against the closed form, the private
step against per-example gradients computed one by one, Poisson batches, the command line and its card."""

from __future__ import annotations

import json
import math

import pytest
import torch
from scipy.optimize import brentq
from scipy.stats import norm

from recon.models.denoiser import EDMDenoiser
from recon.models.networks import UNet
from recon.training import TrainConfig, TrainState
from recon.training.loop import train_step
from recon.training.losses import EDMLoss
from recon.training.privacy import DPConfig, PoissonBatches, epsilon_prv_accountant, epsilon_spent, noise_multiplier

DELTA = 1e-5


# The chapter's three private runs (q = 64/2048, 200 steps at the sigma each target needs) and two other regimes.
@pytest.mark.parametrize(("sigma", "q", "steps"), [(0.608, 1 / 32, 200), (0.872, 1 / 32, 200), (1.914, 1 / 32, 200),
                                                   (1.0, 0.05, 1000), (0.8, 0.03, 200)])
def test_accountants_agree(sigma, q, steps):
    prv, rdp = epsilon_spent(sigma, q, steps, DELTA, "prv"), epsilon_spent(sigma, q, steps, DELTA, "rdp")
    assert prv <= rdp + 0.01, "RDP is an upper bound: the tight PRV accountant cannot exceed it"
    assert rdp <= 1.25 * prv, "RDP is 6-15 % loose in this regime (q >= 0.01, epsilon > 0.5), not more"
    assert abs(prv - epsilon_prv_accountant(sigma, q, steps, DELTA)) <= 0.02


def gaussian_dp_epsilon(mu: float, delta: float) -> float:
    """Exact epsilon of a mu-GDP mechanism (Dong et al. 2022): delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)."""
    return brentq(lambda e: norm.cdf(-e / mu + mu / 2) - math.exp(e) * norm.cdf(-e / mu - mu / 2) - delta, 0, 100)


def test_full_batch_matches_the_closed_form():
    sigma, steps = 20.0, 100  # q = 1: steps Gaussian mechanisms compose to mu = sqrt(steps) / sigma exactly
    exact = gaussian_dp_epsilon(math.sqrt(steps) / sigma, DELTA)
    assert abs(epsilon_prv_accountant(sigma, 1.0, steps, DELTA) - exact) <= 0.02
    assert epsilon_spent(sigma, 1.0, steps, DELTA, "rdp") >= exact - 1e-6


def test_noise_multiplier_is_the_smallest_that_meets_the_target():
    sigma = noise_multiplier(4.0, DELTA, 0.03, 200)
    assert epsilon_spent(sigma, 0.03, 200, DELTA) <= 4.0
    assert epsilon_spent(0.97 * sigma, 0.03, 200, DELTA) > 4.0 - 0.05


def test_bad_privacy_settings_are_refused():
    with pytest.raises(ValueError, match="finite"):
        DPConfig(float("inf"))
    with pytest.raises(ValueError, match="1/N"):
        DPConfig(10.0, delta=1e-2).check_data(1000, 32)
    with pytest.raises(ValueError, match="accountant"):
        DPConfig(1.0, accountant="gdp")


def test_poisson_batches_vary_and_resume():
    images, labels = torch.arange(1000.0).reshape(-1, 1, 1, 1), torch.arange(1000)
    batches = PoissonBatches(images, labels, 0.05, seed=3)
    sizes = [len(next(batches)[0]) for _ in range(200)]
    assert len(set(sizes)) > 5 and abs(sum(sizes) / len(sizes) - 50) < 3
    state = batches.state_dict()
    ahead = next(batches)[1]
    batches.load_state_dict(state)
    assert torch.equal(next(batches)[1], ahead)


def tiny_prior(classes: int = 2) -> EDMDenoiser:
    torch.manual_seed(0)
    net = UNet(base=8, mults=(1, 2), emb_dim=16, classes=classes)
    for p in net.parameters():  # away from the zero initialisation, so every layer has a gradient
        p.data.add_(0.05 * torch.randn_like(p))
    prior = EDMDenoiser(net, image_size=16)
    prior.precision = "fp32"
    return prior


class FixedDraws:
    """The EDM loss at given noise levels and noise, so one example's loss can be recomputed on its own."""

    def __init__(self, sigma, noise):
        self.sigma, self.noise = sigma, noise

    def __call__(self, model, x0, generator, labels=None):
        idx = self.index
        return EDMLoss().per_example(model, x0, self.sigma[idx], self.noise[idx], labels).mean()


def private_state(prior, sigma_noise: float, clip: float, expected: int, monkeypatch):
    """The library's own wiring (make_private), with the calibrated sigma replaced by ``sigma_noise``."""
    from recon.training import privacy

    monkeypatch.setattr(privacy, "noise_multiplier", lambda *args, **kwargs: sigma_noise)
    monkeypatch.setattr(privacy, "privacy_card", lambda *args, **kwargs: {})
    state = TrainState.create(prior, torch.optim.SGD(prior.net.parameters(), lr=1.0), torch.Generator())
    config = privacy.DPConfig(1.0, delta=1e-3, clip=clip)
    state.optimizer, hooks, _ = privacy.make_private(prior.net, state.optimizer, config, expected / 100, 100, 10,
                                                     noise_seed=0)
    return state, hooks


def test_private_step_is_the_sum_of_clipped_per_example_gradients(monkeypatch):
    prior, g = tiny_prior(), torch.Generator().manual_seed(1)
    x0, labels = torch.rand(5, 1, 16, 16, generator=g), torch.tensor([0, 1, 1, 0, 2])
    loss = FixedDraws(torch.rand(5, generator=g) * 0.5 + 0.05, torch.randn(5, 1, 16, 16, generator=g))
    clip, expected = 0.05, 8
    manual = [torch.zeros_like(p) for p in prior.net.parameters()]
    for i in range(5):  # one example at a time, clipped to norm `clip`
        loss.index = [i]
        prior.net.zero_grad()
        loss(prior, x0[i:i + 1], None, labels[i:i + 1]).backward()
        grads = [p.grad.clone() for p in prior.net.parameters()]
        norm_i = torch.sqrt(sum((gr**2).sum() for gr in grads))
        assert norm_i > clip, "the test must exercise clipping"
        for m, gr in zip(manual, grads):
            m += gr * min(1.0, clip / float(norm_i)) / expected
    before = [p.detach().clone() for p in prior.net.parameters()]
    state, hooks = private_state(prior, 0.0, clip, expected, monkeypatch)
    loss.index = slice(None)
    train_step(state, loss, x0, TrainConfig(warmup=0, lr=1.0, clip_grad=None), labels)
    hooks.cleanup()
    for b, p, m in zip(before, prior.net.parameters(), manual):  # SGD with lr 1: the step is the gradient
        torch.testing.assert_close(b - p.detach(), m, atol=1e-6, rtol=1e-4)


def test_an_empty_poisson_batch_still_takes_the_noise_step(monkeypatch):
    prior = tiny_prior()
    before = [p.detach().clone() for p in prior.net.parameters()]
    state, hooks = private_state(prior, 1.0, 1.0, 8, monkeypatch)
    train_step(state, EDMLoss(), torch.zeros(0, 1, 16, 16), TrainConfig(warmup=0, lr=1e-2, clip_grad=None),
               torch.zeros(0, dtype=torch.int64))
    hooks.cleanup()
    moved = [float((b - p.detach()).abs().max()) for b, p in zip(before, prior.net.parameters())]
    assert min(moved) > 0, "every parameter receives noise, even with no example in the batch"


def test_private_training_command_writes_the_privacy_card(tmp_path, monkeypatch):
    from recon.cli import train
    from recon.cli.train import main

    made = []
    real_make_private = train.make_private
    monkeypatch.setattr(train, "make_private", lambda *a, **k: made.append(real_make_private(*a, **k)) or made[-1])

    args = ["--data", "head_ct_private", "--size", "32", "--classes", "2", "--base", "8", "--mults", "1", "2",
            "--n-train", "64", "--batch", "8", "--steps", "3", "--warmup", "0", "--dp-epsilon", "8",
            "--dp-delta", "1e-3", "--out", str(tmp_path / "dp")]
    card = json.loads((main(args) / "card.json").read_text())
    privacy = card["privacy"]
    assert privacy["epsilon"] <= 8.0 and privacy["steps"] == 3 and privacy["sample_rate"] == 8 / 64
    assert privacy["epsilon"] <= privacy["epsilon_rdp"] + 0.01
    assert card["loss_curve"] == [] and card["config"]["precision"] == "fp32"
    assert "--dp-epsilon 8" in card["command"]
    assert type(made[0][0]).__name__ == "DPOptimizer" and made[0][0].noise_multiplier == privacy["noise_multiplier"]
    with pytest.raises(ValueError, match="1/N"):
        main([*args[:-1], str(tmp_path / "bad"), "--dp-delta", "0.5"])


def test_resuming_refuses_other_privacy_settings():
    images = torch.zeros(100, 1, 2, 2)
    batches = PoissonBatches(images, None, 0.1, settings={"noise_multiplier": 1.0, "steps": 10})
    state = batches.state_dict()
    other = PoissonBatches(images, None, 0.1, settings={"noise_multiplier": 1.0, "steps": 20})
    with pytest.raises(ValueError, match="privacy settings"):
        other.load_state_dict(state)
    same = PoissonBatches(images, None, 0.1, settings={"noise_multiplier": 1.0, "steps": 10})
    same.load_state_dict(state)
    assert torch.equal(next(same), next(batches))
