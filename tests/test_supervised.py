"""Supervised post-processing networks, named measurement settings, limited-angle CT and the shift grid."""

from __future__ import annotations

import json

import pytest
import torch

import recon
from recon.evaluation.shift_study import NETWORKS, oracle_name, setting_tag, shift_grid
from recon.operators.settings import classical, make_operator
from recon.train import main as train_main
from recon.training import SupervisedLoss

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
    with pytest.raises(SystemExit, match="--settings"):
        train_main(TINY + ["--data", "head_ct", "--loss", "supervised", "--steps", "1", "--out", str(tmp_path / "x")])
    out = train_main(TINY + ["--data", "head_ct", "--loss", "supervised", "--settings", "ct:6", "ct:10", "--steps", "3",
                             "--fine-factor", "2",
                             "--out", str(tmp_path / "net")])
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "supervised" and card["config"]["settings"] == ["ct:6", "ct:10"]
    op = make_operator("ct:8", 16)
    y = op.A(recon.data.head_ct_phantoms(2, 16, "test", 0))
    x, record = recon.reconstruct(y, op, method="supervised", network=str(out))
    assert x.shape == (2, 1, 16, 16) and record.nfe == 0 and record.settings["network"] == str(out)
    with pytest.raises(ValueError, match="needs network="):
        recon.reconstruct(y, op, method="supervised")


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


def test_shift_costs_are_paired_adapted_minus_deployed_and_need_an_oracle_for_networks():
    from recon.evaluation.shift_study import shift_costs

    base = [30.0 + 0.1 * (i % 4) for i in range(8)]
    point = {"rows": {"prior, λ tuned here": {"psnr": [v + 0.2 for v in base]},
                      "prior, λ carried over": {"psnr": base},
                      "network (single)": {"psnr": [v - 3.0 for v in base]},
                      "network (oracle)": {"psnr": [v + 1.0 for v in base]}}}
    costs = shift_costs(point)
    assert abs(costs["prior"].mean - 0.2) < 1e-9 and abs(costs["network (single)"].mean - 4.0) < 1e-9
    del point["rows"]["network (oracle)"]
    assert set(shift_costs(point)) == {"prior"}


def test_the_network_list_names_every_checkpoint_once_with_its_settings():
    from recon.evaluation.shift_study import FAMILY, ORACLES, network_commands

    commands = network_commands()
    folders = [folder for folder, _ in commands]
    assert len(folders) == len(set(folders)) == 2 * 2 + len(ORACLES["head_ct"]) + len(ORACLES["brain"])
    assert "checkpoints/head_ct_64_sup_ct16" in folders and "checkpoints/brain_64_sup_mri4_equispaced" in folders
    family = dict(commands)["checkpoints/brain_64_sup_family"]
    assert family[family.index("--settings") + 1:family.index("--size")] == FAMILY["brain"]
    for _, args in commands:  # every setting named in a command builds an operator
        for setting in args[args.index("--settings") + 1:args.index("--size")]:
            make_operator(setting, 16)
