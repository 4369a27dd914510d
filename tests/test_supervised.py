"""Supervised post-processing networks, named measurement settings, limited-angle CT and the shift grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import recon
from recon.cli.errors import UsageError
from recon.cli.train import run as train_main
from recon.operators.settings import classical, make_operator
from recon.training import SupervisedLoss
from studies.shift_study import NETWORKS, oracle_name, setting_tag, shift_grid

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "16", "--n-train", "24", "--batch", "8", "--base", "8", "--mults", "1", "2", "--warmup", "1",
        "--checkpoint-every", "2", "--curve-every", "1", "--precision", "fp32", "--device", "cpu"]


def test_settings_name_the_operators_and_bad_names_say_how_to_write_them():
    ct, limited, mri = make_operator("ct:8", 16), make_operator("ct:8:90", 16), make_operator("mri:4:equispaced", 16)
    assert (ct.n_views, ct.arc, limited.arc, mri.acceleration, mri.pattern) == (8, 180.0, 90.0, 4.0, "equispaced")
    assert make_operator("mri:8").pattern == "random"
    for bad in ("ct", "ct:x", "mri:4:diagonal", "pet:3"):
        with pytest.raises(ValueError, match="ct:VIEWS"):
            make_operator(bad)


def test_a_limited_angle_scan_leaves_a_wedge_unmeasured():
    full, limited = recon.ParallelBeamCT(32, 16), recon.ParallelBeamCT(32, 16, arc=90)
    assert float(limited.angles.max()) < 1.58 and "arc=90" in repr(limited)
    x = recon.data.head_ct_phantoms(2, 32, "test", 0)
    error_full = (full.fbp(full.A(x)) - x).pow(2).mean()
    error_limited = (limited.fbp(limited.A(x)) - x).pow(2).mean()
    assert error_limited > 2 * error_full  # the missing wedge costs more than sparse sampling alone
    with pytest.raises(ValueError, match="arc"):
        recon.ParallelBeamCT(32, 16, arc=200)


def test_supervised_loss_measures_fine_renderings_off_the_grid_and_scores_the_pixel_averages():
    loss = SupervisedLoss(["ct:4", "ct:8"], 16, factor=2)

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    truth, fine = recon.data.fine_and_truth("head_ct", 3, 16, "train", 0, factor=2)
    drawn = {round(float(loss(Identity(), fine, torch.Generator().manual_seed(s))), 7) for s in range(12)}
    expected = {round(float((classical(op, op.A_fine(fine)) - truth).pow(2).mean()), 7)
                for op in (make_operator("ct:4", 16), make_operator("ct:8", 16))}
    assert drawn == expected  # both settings drawn, each scored against the pixel averages of the fine rendering
    mri = SupervisedLoss(["mri:4"], 16, factor=2, mask_seeds=3)
    for s in range(20):
        mri(Identity(), fine, torch.Generator().manual_seed(s))
    assert {seed for _, seed in mri._operators} == {1, 2, 3}  # the test mask (seed 0) is never trained on
    with pytest.raises(ValueError, match="ct:VIEWS"):
        SupervisedLoss(["ct:x"], 16)


def test_a_supervised_network_trains_loads_and_reconstructs(tmp_path):
    with pytest.raises(UsageError, match="--settings"):
        train_main(TINY + ["--data", "head_ct", "--loss", "supervised", "--steps", "1", "--out", str(tmp_path / "x")])
    out = train_main(TINY + ["--data", "head_ct", "--loss", "supervised", "--settings", "ct:6", "ct:10", "--steps", "3",
                             "--fine-factor", "2",
                             "--out", str(tmp_path / "net")])
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "supervised" and card["config"]["settings"] == ["ct:6", "ct:10"]
    op = make_operator("ct:8", 16)
    y = op.A(recon.data.head_ct_phantoms(2, 16, "test", 0))
    x, record = recon.reconstruct(y, op, method="supervised", network=str(out))
    assert x.shape == (2, 1, 16, 16) and record.nfe == 1 and record.settings["network"] == str(out)
    with pytest.raises(ValueError, match="needs network="):
        recon.reconstruct(y, op, method="supervised")
    tuned = train_main(TINY + ["--data", "head_ct", "--loss", "supervised", "--settings", "ct:8", "--steps", "2",
                               "--fine-factor", "2", "--init", str(out), "--out", str(tmp_path / "oracle")])
    card = json.loads((tuned / "card.json").read_text())
    assert card["config"]["settings"] == ["ct:8"] and card["config"]["init"] == str(out)
    assert card["config"]["net"] == json.loads((out / "card.json").read_text())["config"]["net"]
    with pytest.raises(UsageError, match="'supervised' checkpoint"):
        train_main(TINY + ["--data", "head_ct", "--loss", "supervised", "--settings", "ct:8", "--steps", "1",
                           "--init", str(ROOT / "checkpoints/head_ct_64"), "--out", str(tmp_path / "bad")])
    with pytest.raises(UsageError, match="pass --size 16"):
        train_main(TINY[2:] + ["--size", "32", "--data", "head_ct", "--loss", "supervised", "--settings", "ct:8",
                               "--steps", "1", "--init", str(out), "--out", str(tmp_path / "bad")])


def test_the_shift_grid_covers_the_axes_and_names_oracles_by_setting():
    grid = shift_grid()
    axes = {p.axis for p in grid}
    assert {"views", "acceleration (equispaced)"} <= axes and any("arc" in a for a in axes)
    assert any(p.noise is not None for p in grid) and {p.dataset for p in grid} == {"head_ct", "brain"}
    point = next(p for p in grid if p.setting == "mri:8:equispaced")
    assert oracle_name(point) == "brain_sup_mri8_equispaced"
    assert oracle_name(next(p for p in grid if p.noise is not None)) is None  # no noise-trained oracle
    assert setting_tag("mri:4") == setting_tag("mri:4:random") == "mri4_random"
    assert setting_tag("ct:16:90") == "ct16_arc90" and NETWORKS["brain"]["single"] == "brain_sup_mri4_equispaced"


def test_turning_the_phase_encoding_direction_transposes_the_sampling():
    columns = make_operator("mri:4:equispaced", 16)
    rows = make_operator("mri:4:equispaced:rows", 16)
    x = recon.data.head_ct_phantoms(2, 16, "test", 0)
    # sampling rows of k-space of x is sampling columns of k-space of x transposed
    assert torch.allclose(rows.A(x), columns.A(x.transpose(-1, -2)).transpose(-1, -2), atol=1e-6)
    assert "orientation='rows'" in repr(rows)
    with pytest.raises(ValueError, match="orientation"):
        recon.CartesianMRI(16, 4, orientation="diagonal")


def _results(oracle: bool = True) -> dict:
    """A shift results file in miniature: the training point and one shifted point per data family."""
    base = [30.0 + 0.1 * (i % 4) for i in range(8)]
    jitter = [0.01 * j for j in (1, -1, 2, -2, 3, -3, 0, 0)]  # mean 0: intervals are intervals, the means exact

    def rows(prior_cost, single_drop, oracle_gain):
        out = {"prior, λ tuned here": {"psnr": [v + prior_cost + j for v, j in zip(base, jitter)]},
               "prior, λ carried over": {"psnr": base}, "network (single)": {"psnr": [v - single_drop for v in base]},
               "network (family)": {"psnr": [v - single_drop / 2 - j for v, j in zip(base, jitter)]}}
        if oracle_gain is not None:
            out["network (oracle)"] = {"psnr": [v - single_drop + oracle_gain + j for v, j in zip(base, jitter)]}
        return out

    spread = {k: [0.1] * 4 for k in ("rmse", "std", "coverage", "correlation", "mean_psnr", "sample_psnr")}
    points = []
    for dataset, home in (("head_ct", "ct:16"), ("brain", "mri:4:equispaced")):
        points.append({"setting": home, "dataset": dataset, "axis": "a", "value": 1, "noise": "noise-free",
                       "rows": rows(0.0, -2.0, None), "spread": spread, "source": True})
        points.append({"setting": home.replace("16", "6").replace("4", "10"), "dataset": dataset, "axis": "a",
                       "value": 2, "noise": "noise-free", "rows": rows(0.2, 3.0, 4.0 if oracle else None),
                       "spread": spread, "source": False})
        # the training setting with the source's noise: no shift for the prior (its cost is 0 by construction)
        points.append({"setting": home, "dataset": dataset, "axis": "b", "value": 3, "noise": "some noise",
                       "rows": rows(0.0, 1.0, None), "spread": spread, "source": True})
    return {"points": points, "anatomy": {"x": {"tv": {"psnr": [1.0, 2.0], "ssim": [0.5, 0.5]}}}}


def test_shift_costs_are_paired_adapted_minus_deployed_and_need_an_oracle_for_networks():
    from studies import shift_report

    costs = shift_report.costs(_results())
    shifted = costs[1]
    assert abs(shifted["prior"].mean - 0.2) < 1e-9 and shifted["prior"].low < 0.2 < shifted["prior"].high
    assert abs(shifted["network (single) vs oracle"].mean - 4.0) < 1e-9
    assert abs(shifted["network (family) vs oracle"].mean - 2.5) < 1e-9
    # against the prior: here the single network is 3 dB below the prior, at home 2 dB above it: it lost 5 dB more
    assert abs(shifted["network (single) vs prior"].mean - 5.0) < 1e-9
    assert "network (single) vs oracle" not in shift_report.costs(_results(oracle=False))[1]


def test_the_shift_goals_count_verdicts_over_the_shifted_points_only():
    from studies import shift_report

    goals = shift_report.goals(_results())
    assert goals["in_distribution"]["head_ct"].mean > 1.9  # the network wins at home in this miniature
    assert goals["prior_within_1db"] == {"met": 2, "undecided": 0, "not met": 0}  # the source-noise points left out
    assert goals["network (single) vs oracle"]["met"] == 2
    assert sum(goals["network (single) vs prior"].values()) == 4  # the noisy training-setting points are shifts for it
    assert sum(goals["network (family) vs prior, inside its family"].values()) == 0  # ct:6, mri:10 are outside
    recovery = goals["family_recovers"]
    assert [round(r["fraction"], 3) for r in recovery] == [0.375, 0.375]
    assert all(r["low"] < 0.375 < r["high"] and not r["in family"] for r in recovery)
    table = shift_report.means(_results())
    assert [r["in-distribution"] for r in table] == [True, False, False] * 2
    assert shift_report.curve(_results(), "a", "network (oracle)")[0] == [2, 2]
    assert len(shift_report.spread_rows(_results())) == 6 and shift_report.anatomy_rows(_results())[0]["PSNR"] == 1.5


def test_the_network_list_names_every_checkpoint_once_with_its_settings():
    from studies.shift_study import FAMILY, ORACLES, network_commands

    commands = network_commands()
    folders = [folder for folder, _ in commands]
    assert len(folders) == len(set(folders)) == 2 * 2 + len(ORACLES["head_ct"]) + len(ORACLES["brain"])
    assert "checkpoints/head_ct_64_sup_ct16" in folders and "checkpoints/brain_64_sup_mri4_equispaced" in folders
    family = dict(commands)["checkpoints/brain_64_sup_family"]
    assert family[family.index("--settings") + 1:family.index("--size")] == FAMILY["brain"]
    for folder, args in commands:  # every setting named in a command builds an operator
        start = args.index("--settings") + 1
        settings = args[start:next(i for i in range(start, len(args)) if args[i].startswith("--"))]
        for setting in settings:
            make_operator(setting, 16)
        if folder.endswith(tuple(setting_tag(s) for s in ORACLES["head_ct"] + ORACLES["brain"])):  # fine-tuned
            assert args[args.index("--init") + 1] in folders and settings == [args[start]]


def test_the_shift_study_tunes_lambda_with_the_search_it_is_given(monkeypatch):
    from studies import experiments, protocol, shift_study

    seen = []
    monkeypatch.setattr(protocol, "tune_all", lambda task, choices, **options: seen.append(options["search"]) or
                        {m: "tuned" for m in choices})
    source = shift_study.source_task(shift_grid()[0], 0)
    options = {"nfe": 30, "n_val": 16, "n_trials": 10, "seed": 0, "search": "protocol"}
    assert experiments.shift_tune(source, None, options, "cpu") == "tuned"
    assert experiments.shift_tune(source, None, {k: v for k, v in options.items() if k != "search"}, "cpu") == "tuned"
    assert seen == ["protocol", "tpe"]  # the stored study's options carry no search: its 10-trial TPE
