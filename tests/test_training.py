"""Training pieces: the EMA forgets the initial weights; the EDM loss is finite and seed-determined."""

from __future__ import annotations

import torch

from recon.denoiser import EDMDenoiser
from recon.networks import UNet
from recon.train import edm_loss, ema_beta


def test_ema_rampup_forgets_the_initial_weights():
    """Weights jump from 0 to 1 after step 0: a fixed 0.999 decay keeps 13.5 % of the start after 2000 steps; the
    ramped half-life keeps almost none (the bug this guards against left checkpoints 60 % untrained)."""
    ramped, fixed = 0.0, 0.0
    for step in range(1, 2001):
        ramped += (1 - ema_beta(step, 300.0, 0.25)) * (1.0 - ramped)
        fixed += (1 - 0.999) * (1.0 - fixed)
    assert fixed < 0.87 and ramped > 0.99
    assert abs(ema_beta(10_000, 300.0, 0.25) - 0.5 ** (1 / 300)) < 1e-12


def test_edm_loss_is_finite_and_seeded():
    d = EDMDenoiser(UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16), image_size=16)
    x0 = torch.rand(4, 1, 16, 16)
    a = edm_loss(d, x0, torch.Generator().manual_seed(0))
    b = edm_loss(d, x0, torch.Generator().manual_seed(0))
    assert torch.isfinite(a) and torch.equal(a, b)
    a.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in d.parameters())
