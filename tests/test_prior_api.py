"""Checkpoints, the denoiser contract, and reconstruct(): round trips, determinism, NaN-freedom, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

import recon
from recon.methods import METHODS
from recon.models import EDMDenoiser, UNet, load_card, load_denoiser, save_checkpoint
from recon.reconstruction import reconstruct
from recon.sampling import get_sigmas_karras

SIZE = 16


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    net = UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16)
    for p in net.parameters():  # an untrained but non-trivial network (the real init zeroes the output layer)
        p.data.normal_(0, 0.05)
    card = {"kind": "edm", "config": {"data": "head_ct", "image_size": SIZE, "net": net.config,
                       "denoiser": {"sigma_min": 0.002, "sigma_max": 40.0, "sigma_data": 0.5}},
            "command": "python -m recon.train --data head_ct --size 16", "loss_curve": [[1, 1.0]]}
    return save_checkpoint(net, card, tmp_path_factory.mktemp("ckpt") / "tiny")


def test_round_trip_and_card(checkpoint):
    d = load_denoiser(checkpoint)
    card = load_card(checkpoint)
    assert card["sha256"] and card["storage_dtype"] == "float16" and card["command"].startswith("python -m recon.train")
    x = torch.rand(2, 1, SIZE, SIZE)
    assert torch.equal(d(x, 0.5), load_denoiser(checkpoint)(x, 0.5))


def test_tampered_or_missing_checkpoints_are_refused(checkpoint, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "card.json").write_text((checkpoint / "card.json").read_text())
    data = bytearray((checkpoint / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the sha256"):
        load_denoiser(bad)
    (bad / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_denoiser(bad)
    with pytest.raises(FileNotFoundError, match="no shipped prior named"):
        load_denoiser("no_such_prior")


def test_the_card_names_the_model_kind(checkpoint, tmp_path):
    card = load_card(checkpoint)
    for kind, match in ((None, "names no model 'kind'"), ("gan", "unknown model kind 'gan'")):
        bad = tmp_path / f"kind_{kind}"
        bad.mkdir()
        (bad / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes())
        # Without its card_sha256 (as the shipped cards, written before cards carried one): the kind is checked.
        changed = {k: v for k, v in card.items() if k not in ("kind", "card_sha256")} | ({"kind": kind} if kind else {})
        (bad / "card.json").write_text(json.dumps(changed))
        with pytest.raises(ValueError, match=match):
            load_denoiser(bad)
    assert isinstance(load_denoiser(checkpoint), EDMDenoiser)
    assert load_card("head_ct")["kind"] == "edm" and load_card("brain")["kind"] == "edm"


def test_denoiser_contract_over_the_sigma_range(checkpoint):
    d = load_denoiser(checkpoint)
    x = torch.rand(3, 1, SIZE, SIZE)
    for sigma in get_sigmas_karras(12, d.sigma_min, d.sigma_max)[:-1]:
        noisy = x + float(sigma) * torch.randn_like(x)
        out, score = d(noisy, float(sigma)), d.score(noisy, float(sigma))
        assert out.shape == x.shape and torch.isfinite(out).all() and torch.isfinite(score).all()
    # At tiny sigma the preconditioning makes D the identity, whatever the network.
    assert torch.allclose(d(x, 1e-6), x, atol=1e-4)
    with pytest.raises(ValueError, match="trained on 16x16"):
        d(torch.rand(1, 1, 32, 32), 0.5)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        d(x, 0.0)
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        d(nan, 0.5)


@pytest.mark.parametrize("method", ["proximal", "proximal_ddrm", "dps"])
def test_reconstruct_is_seeded_finite_and_batch_consistent(checkpoint, method):
    prior = load_denoiser(checkpoint)
    op = recon.ParallelBeamCT(SIZE, 6)
    y = op.A(recon.data.head_ct_phantoms(3, SIZE, "test", 0))
    a, rec = reconstruct(y, op, prior, method=method, steps=6, seed=4)
    b, _ = reconstruct(y, op, prior, method=method, steps=6, seed=4)
    one, _ = reconstruct(y[1:2], op, prior, method=method, steps=6, seed=5)
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert torch.allclose(a[1:2], one, atol=1e-5)
    assert rec.nfe == 6 and rec.seconds > 0 and rec.residual.shape == (3,)
    if method == "proximal":  # the final hard projection lands on the measurements
        assert float(rec.residual.max()) < 1e-4


def test_reconstruct_baselines_and_errors(checkpoint):
    prior = load_denoiser(checkpoint)
    ct, mri = recon.ParallelBeamCT(SIZE, 6), recon.CartesianMRI(SIZE, 4, 0.125, seed=0)
    x = recon.data.head_ct_phantoms(2, SIZE, "test", 0)
    for op, methods in ((ct, ["fbp", "pinv", "tv"]), (mri, ["zero_filled", "pinv", "tv"])):
        for method in methods:
            out, rec = reconstruct(op.A(x), op, method=method)
            assert out.shape == x.shape and rec.nfe == 0
    with pytest.raises(ValueError, match="MRI baseline"):
        reconstruct(ct.A(x), ct, method="zero_filled")
    with pytest.raises(ValueError, match="needs a prior"):
        reconstruct(ct.A(x), ct, method="proximal")
    with pytest.raises(ValueError, match="unknown method"):
        reconstruct(ct.A(x), ct, prior, method="magic")
    with pytest.raises(ValueError, match=r"method 'dps' takes no option 'lam'; its options are: steps=60, zeta=1.0"):
        reconstruct(ct.A(x), ct, prior, method="dps", lam=0.5)
    with pytest.raises(ValueError, match="snr sets a Langevin corrector"):
        reconstruct(ct.A(x), ct, prior, method="proximal", sampler="em", snr=0.2, steps=2)
    with pytest.raises(ValueError, match="unknown sampler"):
        reconstruct(ct.A(x), ct, prior, method="proximal", sampler="ddim", steps=2)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        reconstruct(ct.A(x), ct, prior, method="proximal", steps=0)
    with pytest.raises(ValueError, match="trained at 16x16"):
        big = recon.ParallelBeamCT(32, 6)
        reconstruct(big.A(torch.zeros(1, 1, 32, 32)), big, prior, method="proximal")
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        reconstruct(ct.A(x), ct, prior, method="proximal", lam=2.0, steps=2)
    assert set(METHODS) == {"proximal", "proximal_ddrm", "dps", "ddnm", "path", "consistency", "tweedie", "supervised", "fbp", "zero_filled", "pinv", "tv", "diffpir", "dds", "red_diff", "daps"}
