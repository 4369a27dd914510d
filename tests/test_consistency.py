"""Consistency models: the boundary condition, consistency tuning's schedule, the multistep sampler (exact on a
Gaussian prior), the guides before re-noising, the shipped checkpoints and the tuning spaces."""

from __future__ import annotations

import json

import pytest
import torch

import recon
from recon.cli.errors import UsageError
from recon.cli.train import run as train_main
from recon.models import ConsistencyDenoiser, Denoiser, UNet, is_consistency_model
from recon.models.checkpoints import load_card, shipped_folder
from recon.random import generators, randn
from recon.sampling import get_sigmas_consistency, sample_consistency
from recon.training import ECTLoss

SIZE = 8


def tiny_cm() -> ConsistencyDenoiser:
    torch.manual_seed(0)
    net = UNet(base=8, mults=(1, 2), blocks=1, emb_dim=16)
    for p in net.parameters():  # a network that is not the zero map, so the boundary condition has work to do
        p.data.normal_(0, 0.1)
    return ConsistencyDenoiser(net, image_size=SIZE, precision="fp32")


def test_the_boundary_condition_holds_exactly_whatever_the_network():
    cm, x = tiny_cm(), torch.rand(3, 1, SIZE, SIZE)
    assert torch.equal(cm(x, cm.sigma_min), x) and torch.equal(cm(x, 1e-5), x)
    assert (cm(x, 0.5) - x).abs().max() > 1e-3  # above the boundary the network acts
    with pytest.raises(TypeError, match="no score"):
        cm.score(x, 0.5)


class GaussianConsistency(Denoiser):
    """The exact consistency function of ``x0 ~ N(0, diag(v))``: the probability-flow ODE moves each coordinate along
    ``x_sigma = x0 sqrt(1 + sigma^2 / v)``, so the trajectory's end is ``x sqrt(v / (v + sigma^2))``."""

    is_consistency = True
    sigma_min, sigma_max, image_size = 1e-4, 100.0, 2

    def __init__(self, v):
        self.v = v

    def __call__(self, x, sigma):
        return x * (self.v / (self.v + float(sigma) ** 2)).sqrt()


def test_multistep_sampling_with_the_exact_consistency_function_draws_from_the_prior():
    v = torch.tensor([0.04, 0.25, 0.01, 0.09]).reshape(1, 1, 2, 2)
    cm, n = GaussianConsistency(v), 20000
    for steps in (1, 3):
        sigmas = get_sigmas_consistency(steps, 10.0, 0.5, 0.2)
        gens = generators(range(n))
        x = sample_consistency(cm, 10.0 * randn((n, 1, 2, 2), gens, torch.float64), sigmas, generator=gens)
        ratio = x.var(0, keepdim=True) / v
        assert ((ratio - 1).abs() < 0.05).all(), (steps, ratio)


def test_the_levels_start_in_pure_noise_and_shrink_geometrically():
    s = get_sigmas_consistency(4, 10.0, 0.4, 0.1)
    assert s[0] == 10.0 and s[-1] == 0 and torch.allclose(s[1:-1], torch.tensor([0.4, 0.4 * 0.1**0.5, 0.04],
                                                                                 dtype=torch.float64))
    assert get_sigmas_consistency(1, 10.0, 0.4).tolist() == [10.0, 0.0]
    with pytest.raises(ValueError, match="sigma_renoise <= sigma_max"):
        get_sigmas_consistency(3, 10.0, 20.0)


def test_ect_gap_shrinks_by_stage_and_reaches_the_boundary_at_low_noise():
    loss = ECTLoss(stage_every=10)
    t = torch.tensor([0.01, 0.5, 5.0, 50.0])
    loss.at_step(0)
    first = loss.gap_end(t)
    assert first[0] == 0 and (first < t).all()  # stage 0: low levels are plain denoising toward the clean image
    loss.at_step(35)  # stage 3
    later = loss.gap_end(t)
    assert (later >= first).all() and (later < t).all() and later[-1] / t[-1] > 0.93


def test_ect_loss_is_finite_differentiable_and_seeded():
    cm, loss = tiny_cm(), ECTLoss()
    x0 = torch.rand(4, 1, SIZE, SIZE)
    values = [loss(cm, x0, torch.Generator().manual_seed(1)) for _ in range(2)]
    values[0].backward()
    assert torch.isfinite(values[0]) and values[0] == values[1]
    assert all(p.grad is not None for p in cm.net.parameters() if p.requires_grad)


TINY = ["--data", "head_ct", "--n-train", "16", "--batch", "8", "--warmup", "1", "--checkpoint-every", "2",
        "--curve-every", "1", "--precision", "fp32", "--device", "cpu", "--steps", "2"]


def test_consistency_tuning_starts_from_a_prior_and_writes_a_consistency_card(tmp_path):
    with pytest.raises(UsageError, match="--init"):
        train_main(TINY + ["--loss", "ect", "--out", str(tmp_path / "x")])
    out = train_main(TINY + ["--loss", "ect", "--init", "checkpoints/head_ct_64", "--out", str(tmp_path / "cm")])
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "consistency" and card["loss"]["name"] == "ect"
    assert card["config"]["init_sha256"] == load_card("head_ct")["sha256"] and "--init checkpoints/head_ct_64" in card["command"]
    assert is_consistency_model(recon.load_prior(out))


@pytest.mark.parametrize("name", ["head_ct_cm", "brain_cm"])
def test_shipped_consistency_models_load_by_name_with_their_cards(name):
    assert shipped_folder(name) == name[:-3] + "_64_cm"
    cm, card = recon.load_prior(name), load_card(name)
    assert is_consistency_model(cm) and card["kind"] == "consistency" and card["loss"]["name"] == "ect"
    assert card["command"].startswith("python -m recon.train") and card["hardware"] and card["wall_time_s"] > 0
    assert card["config"]["init_sha256"] == load_card(name[:-3])["sha256"]


@pytest.fixture(scope="module")
def ct():
    op = recon.ParallelBeamCT(64, 16)
    x = recon.data.head_ct_phantoms(2, 64, "test", 0)
    return op, x, op.A(x)


def test_the_proximal_step_before_renoising_lands_on_the_data(ct):
    op, _, y = ct
    cm = recon.load_prior("head_ct_cm", precision="fp32")
    for guide in ("proximal", "replacement"):
        _, record = recon.reconstruct(y, op, cm, "consistency", steps=2, guide=guide)
        assert record.nfe == 2 and float(record.residual.max()) < 1e-3, guide
    _, record = recon.reconstruct(y, op, cm, "consistency", steps=3, lam=0.0)
    assert float(record.residual.min()) > 0.05  # lam = 0: an unconditional sample
    with pytest.raises(ValueError, match="unknown consistency guide"):
        recon.reconstruct(y, op, cm, "consistency", guide="nope")
    with pytest.raises(ValueError, match="replacement treats y as exact"):
        recon.reconstruct(y, op, cm, "consistency", guide="replacement", noise_std=0.1)


def test_score_methods_refuse_a_consistency_model_and_tweedie_is_one_evaluation(ct):
    op, _, y = ct
    with pytest.raises(ValueError, match="method='consistency'"):
        recon.reconstruct(y, op, recon.load_prior("head_ct_cm"), "proximal", steps=2)
    _, record = recon.reconstruct(y, op, recon.load_prior("head_ct"), "tweedie", sigma=0.2)
    assert record.nfe == 1 and float(record.residual.max()) < 1e-3


def test_tuning_spaces_leave_out_idle_options():
    space_for = recon.METHODS["consistency"].space_for
    assert set(space_for({"steps": 1})) == {"lam"}
    assert set(space_for({"steps": 2, "guide": "replacement"})) == {"sigma_renoise"}
    assert set(space_for({"steps": 4, "lam": 1.0})) == {"sigma_renoise", "shrink"}


def synthetic_entry(noise: str, shift: float) -> dict:
    """A head-to-head entry whose CM rows beat every other by ``shift`` dB (plus per-image scatter)."""
    scatter = [0.1 * ((i * 7) % 5 - 2) for i in range(12)]
    rows, tuned = {}, {}
    for label, base, value in (("CM + proximal step|1", 20.0, 1.0), ("CM + proximal step|2", 21.0, 3.0),
                               ("CM + proximal step|4", 22.0, 2.0), ("CM + proximal step|8", 30.0, 9.0),
                               ("diffusion + proximal step|2", 10.0, 1.0),
                               ("diffusion, CM sampler + proximal step|2", 18.0, 2.0),
                               ("Tweedie + proximal step|1", 19.0, 0.0), ("diffusion + proximal step|60", 25.0, 0.0)):
        cm_row = label.startswith("CM")
        rows[label] = {"psnr": [base + (shift if cm_row else 0.0) + s * (2 if cm_row else 1) for s in scatter]}
        tuned[label] = {"value": value}
    return {"noise": noise, "rows": rows, "tuned": tuned}


def test_goal_rows_are_chosen_on_validation_values_and_verdicts_need_the_whole_interval():
    from studies.consistency_study import goal_rows, goals

    entry = synthetic_entry("noise-free", 0.0)
    rows = goal_rows(entry)  # budget 2 validates best among <= 4 (budget 8 is out of reach)
    assert rows["cm"] == "CM + proximal step|2" and rows["same_nfe"] == "diffusion, CM sampler + proximal step|2"
    result = goals(entry)
    assert result["vs_same_nfe"]["verdict"] == "met"  # 21 vs 18: +3 dB, whole interval above 2
    assert result["vs_tweedie"]["verdict"] == "undecided"  # +2 dB on average: the interval straddles the threshold
    assert result["vs_diffusion_60"]["verdict"] == "not met"  # -4 dB
    assert goals(synthetic_entry("noise-free", 4.5))["vs_diffusion_60"]["verdict"] == "met"


def test_the_chapter_reads_the_results_tables_rows_where_that_table_ran_the_same_prior():
    from studies.consistency_study import TABLE_ROWS, with_table_rows

    entry = {"task": "CT, 8 views|noise-free|test",
             "rows": {"DPS|60": {"method": "dps", "psnr": [27.0, 27.5]},
                      "diffusion + proximal step|60": {"method": "proximal", "psnr": [33.0, 33.1]},
                      "Tweedie + proximal step|1": {"method": "tweedie", "psnr": [25.0, 25.2]}},
             "tuned": {"DPS|60": {"prior": "diffusion", "method": "dps", "best": {"zeta": 2.4}},
                       "diffusion + proximal step|60": {"prior": "diffusion", "method": "proximal",
                                                        "best": {"lam": 0.9}},
                       "Tweedie + proximal step|1": {"prior": "diffusion", "method": "tweedie", "best": {}}}}
    table = {"task": entry["task"], "prior": "head_ct",
             "rows": [{"method": "dps", "options": {"zeta": 0.9}, "psnr": [31.9, 31.8]},
                      {"method": "proximal", "options": {"lam": 0.89}, "psnr": [33.2, 33.1]}],
             "tuned": {"dps": {"method": "dps", "best": {"zeta": 0.9}, "at_bound": []},
                       "proximal": {"method": "proximal", "best": {"lam": 0.89}, "at_bound": []}}}
    merged = with_table_rows(entry, table, "head_ct")
    assert merged["rows"]["DPS|60"]["psnr"] == [31.9, 31.8] and merged["tuned"]["DPS|60"]["best"] == {"zeta": 0.9}
    assert all(merged["rows"][label]["source"] == "results/evaluation.json" for label in TABLE_ROWS)
    assert merged["tuned"]["DPS|60"]["prior"] == "diffusion"  # the notebook's prior kind survives
    assert merged["rows"]["Tweedie + proximal step|1"] is entry["rows"]["Tweedie + proximal step|1"]
    assert entry["rows"]["DPS|60"]["psnr"] == [27.0, 27.5]  # the stored entry is not changed
    assert with_table_rows(entry, {**table, "prior": "brain_synth"}, "head_ct") is entry  # another prior: own rows
    short = {**table, "rows": [{**row, "psnr": row["psnr"][:1]} for row in table["rows"]]}
    with pytest.raises(ValueError, match="n_images"):
        with_table_rows(entry, short, "head_ct")


def test_the_chapter_reads_the_solver_studys_rows_at_its_budget():
    from studies.consistency_study import SOLVER_ROWS, with_solver_rows

    sampler, step = SOLVER_ROWS
    entry = {"task": "CT, 16 views|noise-free|test",
             "rows": {sampler: {"method": "consistency", "psnr": [34.6, 34.7]},
                      step: {"method": "proximal", "psnr": [14.8, 14.7]},
                      "CM + proximal step|8": {"method": "consistency", "psnr": [30.0, 30.1]}},
             "tuned": {sampler: {"prior": "diffusion", "method": "consistency", "best": {"lam": 0.9}},
                       step: {"prior": "diffusion", "method": "proximal", "best": {"lam": 1.0}},
                       "CM + proximal step|8": {"prior": "cm", "method": "consistency", "best": {"lam": 0.5}}}}
    point = {"nfe": 8, "tuned_at": 8, "rows": {"consistency": {"method": "consistency", "psnr": [35.9, 35.8]},
                                               "proximal": {"method": "proximal", "psnr": [14.8, 14.8]}}}
    solvers = {"task": entry["task"], "prior": "head_ct",
               "curve": [{**point, "nfe": 4, "rows": {}}, point],  # the 4-NFE point, tuned at 8, is not read
               "tuned": {"8": {"consistency": {"method": "consistency", "best": {"lam": 0.7}},
                               "proximal": {"method": "proximal", "best": {"lam": 0.99}}}}}
    merged = with_solver_rows(entry, solvers, "head_ct")
    assert merged["rows"][sampler]["psnr"] == [35.9, 35.8] and merged["tuned"][sampler]["best"] == {"lam": 0.7}
    assert all(merged["rows"][label]["source"] == "results/solvers.json" for label in SOLVER_ROWS)
    assert merged["tuned"][sampler]["prior"] == "diffusion"
    assert merged["rows"]["CM + proximal step|8"] is entry["rows"]["CM + proximal step|8"]  # the consistency model's
    assert with_solver_rows(entry, {**solvers, "prior": "brain_synth"}, "head_ct") is entry
    with pytest.raises(ValueError, match="no point tuned and tested at 8"):
        with_solver_rows(entry, {**solvers, "curve": solvers["curve"][:1]}, "head_ct")
