"""Training: the EDM loss by hand, the EMA's ramp, and a loop whose checkpoints resume exactly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from recon.cli.train import main as train_main
from recon.models import EDMDenoiser, UNet, load_denoiser
from recon.training import EDMLoss, ema_beta


def test_edm_loss_against_a_hand_computed_value():
    """A fresh U-Net outputs exactly 0 (its last layer starts at zero), so D = (c_skip (y + s n) + 1) / 2. For a grey
    image (y = 0 in the [-1, 1] space) and unit noise the weighted error is lambda(s) c_skip^2 s^2 = sd^2/(s^2+sd^2):
    0.5 at s = 0.5 (sigma = 0.25 in image units) and 0.2 at s = 1 (sigma = 0.5); a wrong weight would not give these."""
    d = EDMDenoiser(UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16), image_size=16, precision="fp32")
    x0 = torch.full((2, 1, 16, 16), 0.5)
    per_example = EDMLoss().per_example(d, x0, torch.tensor([0.25, 0.5]), torch.ones_like(x0))
    assert torch.allclose(per_example, torch.tensor([0.5, 0.2]), atol=1e-6)


def test_edm_loss_is_finite_seeded_and_differentiable():
    d = EDMDenoiser(UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16), image_size=16)
    x0 = torch.rand(4, 1, 16, 16)
    a = EDMLoss()(d, x0, torch.Generator().manual_seed(0))
    b = EDMLoss()(d, x0, torch.Generator().manual_seed(0))
    assert torch.isfinite(a) and torch.equal(a, b)
    a.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in d.parameters())


def test_ema_rampup_forgets_the_initial_weights():
    """Weights jump from 0 to 1 after step 0: a fixed 0.999 decay keeps 13.5 % of the start after 2000 steps; the
    ramped half-life keeps almost none (the bug this guards against left checkpoints 60 % untrained)."""
    ramped, fixed = 0.0, 0.0
    for step in range(1, 2001):
        ramped += (1 - ema_beta(step, 300.0, 0.25)) * (1.0 - ramped)
        fixed += (1 - 0.999) * (1.0 - fixed)
    assert fixed < 0.87 and ramped > 0.99
    assert abs(ema_beta(10_000, 300.0, 0.25) - 0.5 ** (1 / 300)) < 1e-12


TINY = ["--data", "head_ct", "--size", "16", "--n-train", "24", "--batch", "8", "--base", "8", "--mults", "1", "2",
        "--warmup", "2", "--checkpoint-every", "2", "--curve-every", "1", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train_main(TINY + ["--steps", "7", "--out", str(out)])
    return out


def test_training_writes_a_card_that_loading_understands(straight):
    card = json.loads((straight / "card.json").read_text())
    assert card["kind"] == "edm" and card["loss"]["name"] == "edm" and card["steps_done"] == 7
    assert card["command"].startswith("python -m recon.train --data head_ct") and "code_version" in card
    assert "network precision fp32" in card["hardware"] and len(card["loss_curve"]) == 7
    assert load_denoiser(straight).image_size == 16


def test_a_resumed_run_equals_an_uninterrupted_one(straight, tmp_path):
    """7 steps over 3 batches per epoch, stopped after 4 (mid-epoch) and resumed: the same weights, bit for bit."""
    train_main(TINY + ["--steps", "4", "--out", str(tmp_path)])
    train_main(TINY + ["--steps", "7", "--out", str(tmp_path), "--resume"])
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(tmp_path / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    curve_a = json.loads((straight / "card.json").read_text())["loss_curve"]
    assert json.loads((tmp_path / "card.json").read_text())["loss_curve"] == curve_a


def test_a_time_limit_stops_early_and_the_card_names_the_command_that_reproduces_it(straight, tmp_path):
    train_main(TINY + ["--steps", "500", "--time-limit", "0.0001", "--out", str(tmp_path)])
    card = json.loads((tmp_path / "card.json").read_text())
    assert 1 <= card["steps_done"] < 500 and "--time-limit" not in card["command"]
    assert card["command"].endswith(f"--steps {card['steps_done']}") and card["config"]["steps"] == card["steps_done"]
