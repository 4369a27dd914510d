"""The command lines a new user runs: train on a folder, reconstruct a scan (DICOM / NIfTI / PNG / measurements),
tune with several workers on one SQLite study, and train on two processes with torchrun (gloo)."""

import json
import os
import re
import subprocess
import sys

import nibabel
import numpy as np
import optuna
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from scipy.ndimage import map_coordinates
from test_own_data import png_folder

from recon.cli import reconstruct as cli
from recon.cli.images import read_scan, write_nifti
from recon.data.folder import hashed
from recon.training import distributed
from recon.training.distributed import Shard, draw_randn, sharded

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "RECON_PRECISION": "fp32"}
TINY = ["--steps", "3", "--batch", "8", "--base", "8", "--mults", "1", "2", "--curve-every", "1", "--precision", "fp32"]


def run(*args, timeout=300):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_train_on_a_png_folder_then_reconstruct_one_slice(tmp_path):
    """The issue's two commands as a new user types them."""
    data = png_folder(tmp_path / "pngs", size=64)
    trained = run("-m", "recon.train", "--data", str(data), "--size", "32", *TINY, "--out", str(tmp_path / "prior"))
    assert re.search(r"data: \d+ training slices of \d+ patient", trained.stderr) and "it/s" in trained.stderr  # progress
    card = json.loads((tmp_path / "prior" / "card.json").read_text())
    data_card = json.loads((tmp_path / "prior" / "data_card.json").read_text())
    assert card["data_card"]["fingerprint"] == data_card["fingerprint"] and card["config"]["data"] == str(data)
    test_ids = set(data_card["patients_sha256_12"]["test"])
    test_patient = next(p for p in sorted(data.glob("*.png")) if hashed(p.name.split("_")[0]) in test_ids)
    done = run("-m", "recon.reconstruct", "--prior", str(tmp_path / "prior"), "--input", str(test_patient),
               "--operator", "ct", "--views", "8", "--samples", "2", "--option", "steps=5", "--out", str(tmp_path / "rec"))
    assert "proximal x2" in done.stderr  # the progress bar
    report = json.loads((tmp_path / "rec" / "report.json").read_text())
    assert report["off_grid"] is True and report["nfe_per_sample"] == 5 and report["samples"] == 2
    assert np.isfinite(report["psnr_of_mean"]) and report["settings"]["steps"] == 5
    for name in ("recon.png", "recon.npy", "spread.png", "spread.npy", "summary.png", "truth.png", "classical.png"):
        assert (tmp_path / "rec" / name).exists()
    assert np.load(tmp_path / "rec" / "spread.npy").shape == (32, 32)


def test_reconstruct_a_dicom_writes_a_derived_dicom(tmp_path):
    report = cli.main(["--prior", "head_ct", "--input", get_testdata_file("CT_small.dcm"), "--operator", "ct",
                       "--views", "16", "--samples", "2", "--option", "steps=4", "--out", str(tmp_path)])
    assert report["off_grid"] is True and report["psnr_of_mean"] > report["psnr_classical"] - 10
    source, out = pydicom.dcmread(get_testdata_file("CT_small.dcm")), pydicom.dcmread(tmp_path / "recon.dcm")
    assert (out.Rows, out.Columns) == (64, 64) and out.SeriesInstanceUID != source.SeriesInstanceUID
    assert float(out.PixelSpacing[0]) == pytest.approx(2 * float(source.PixelSpacing[0]), rel=1e-5)
    hu = out.pixel_array.astype(float) * float(out.RescaleSlope) + float(out.RescaleIntercept)
    low, high = -160.0, 240.0  # the reconstruction back in HU through the window it was mapped with
    assert hu.min() >= low - 1 and hu.max() <= high + 1
    np.testing.assert_allclose(hu, low + np.load(tmp_path / "recon.npy") * (high - low), atol=0.51)


def test_nifti_output_lies_where_the_input_does(tmp_path):
    """Resample the input volume at the output voxels' world positions: it must match the output (padding of a
    non-square slice, rotation to the radiological view and the grid change undone)."""
    u, v = np.meshgrid(np.arange(60), np.arange(90), indexing="ij")
    blobs = [np.exp(-((u - 20 - k) ** 2 + (v - 55) ** 2) / 300.0) * 1000 for k in range(3)]
    volume = np.stack([np.zeros_like(blobs[0]), *blobs], axis=-1)  # a blank slice first: --slice is still z
    affine = np.array([[0.9, 0, 0, -30], [0, 1.1, 0, -40], [0, 0, 3.0, 12], [0, 0, 0, 1]])
    nibabel.save(nibabel.Nifti1Image(volume, affine), tmp_path / "t1.nii.gz")
    scan = read_scan(tmp_path / "t1.nii.gz", {}, 45, index=2, modality="mri", percentile=100.0)
    truth = scan.truth[0, 0].numpy().astype(np.float64)
    write_nifti(tmp_path / "out.nii.gz", scan, truth)
    out = nibabel.load(tmp_path / "out.nii.gz")
    grid = np.stack(np.meshgrid(np.arange(45), np.arange(45), [0], indexing="ij"), -1).reshape(-1, 3)
    world = out.affine @ np.c_[grid, np.ones(len(grid))].T
    voxel = np.linalg.inv(affine) @ world
    expected = map_coordinates(volume, voxel[:3], order=1, cval=0.0)
    got = out.get_fdata()[..., 0].ravel()
    inside = np.all((voxel[:2] > 1) & (voxel[:2] < np.array([[59], [89]]) - 1), axis=0)  # away from the padding's edge
    assert inside.sum() > 1000 and np.allclose(voxel[2], 2)
    assert np.abs(expected - got)[inside].max() < 20 and np.abs(got[~inside & (np.abs(voxel[0] - 29.5) > 32)]).max() == 0


def test_reconstruct_refuses_bad_requests(tmp_path):
    from recon.cli.errors import UsageError

    base = ["--prior", "head_ct", "--operator", "ct", "--out", str(tmp_path / "out")]
    with pytest.raises(UsageError, match="no such file"):
        cli.main([*base, "--input", str(tmp_path / "missing.dcm")])
    with pytest.raises(UsageError, match="not understood"):
        cli.main([*base, "--input", get_testdata_file("CT_small.dcm"), "--noise", "loud"])
    with pytest.raises(UsageError, match="other modality"):
        cli.main([*base, "--input", get_testdata_file("CT_small.dcm"), "--noise", "snr:30"])
    np.save(tmp_path / "y.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(UsageError, match="measures"):
        cli.main([*base, "--measurements", str(tmp_path / "y.npy")])


def test_reconstruct_given_mri_measurements(tmp_path):
    from recon.data import mr_small
    from recon.operators.settings import make_operator

    operator = make_operator("mri:4:random", 64)
    np.save(tmp_path / "y.npy", operator.A(mr_small(64)).numpy()[0])
    report = cli.main(["--prior", "brain", "--measurements", str(tmp_path / "y.npy"), "--operator", "mri",
                       "--acceleration", "4", "--pattern", "random", "--samples", "1", "--option", "steps=3",
                       "--out", str(tmp_path / "out")])
    assert report["method"] == "proximal" and "psnr_of_mean" not in report and report["residual"] < 0.1
    assert "spread_mean" not in report and not (tmp_path / "out" / "spread.npy").exists()  # one sample: no spread


def test_tuning_workers_share_one_sqlite_study(tmp_path):
    storage = tmp_path / "study.db"
    command = [sys.executable, "-m", "recon.tune", "--prior", "head_ct", "--data", "head_ct", "--setting", "ct:16",
               "--method", "tv", "--n-val", "2", "--n-trials", "6", "--storage", str(storage), "--study", "s"]
    workers = [subprocess.Popen([*command, "--worker", str(w), "--result", str(tmp_path / f"r{w}.json")], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in (0, 1)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{storage}")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 6 <= len(finished) <= 7  # together they stop at 6 (a trial started as the other finished may add one)
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}
    last = json.loads((tmp_path / "r0.json").read_text())
    assert last["value"] <= study.best_value and last["off_grid"] is True


def test_tuning_on_the_protocol_grid_runs_every_grid_point(tmp_path):
    result = tmp_path / "grid.json"
    done = subprocess.run([sys.executable, "-m", "recon.tune", "--prior", "head_ct", "--data", "head_ct", "--setting",
                           "ct:16", "--method", "tv", "--n-val", "2", "--n-trials", "3", "--search", "grid",
                           "--result", str(result)], check=False, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    tuned = json.loads(result.read_text())
    assert tuned["search"] == "grid" and tuned["trials"] == 13  # the grid's size, not --n-trials


def test_sharded_draws_are_the_single_process_draws():
    whole = torch.randn((8, 3), generator=torch.Generator().manual_seed(1))
    parts = []
    for rank in (0, 1):
        with sharded(Shard(rank, 2)):
            parts.append(draw_randn((4, 3), torch.Generator().manual_seed(1), "cpu"))
    assert torch.equal(torch.cat(parts), whole) and distributed.current() == Shard()
    with pytest.raises(ValueError, match="divisible by 2"):
        Shard(0, 2).block(7)


def test_ddp_on_two_processes_matches_one_process(tmp_path):
    """torchrun, gloo, 2 processes, global batch 8: the loss curve and the weights follow the single-process run at
    batch 8 to 1e-5 (floating-point summation order differs, nothing else)."""
    data = png_folder(tmp_path / "pngs", size=32)
    common = ["-m", "recon.train", "--data", str(data), "--size", "32", *TINY]
    run(*common, "--out", str(tmp_path / "one"))
    run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *common, "--out", str(tmp_path / "two"))
    one, two = (json.loads((tmp_path / name / "card.json").read_text()) for name in ("one", "two"))
    assert two["command"].startswith("torchrun --nproc_per_node 2")
    np.testing.assert_allclose([v for _, v in two["loss_curve"]], [v for _, v in one["loss_curve"]], rtol=1e-5)
    nets = [torch.load(tmp_path / name / "train_state.pt", weights_only=True)["net"] for name in ("one", "two")]
    for key in nets[0]:
        torch.testing.assert_close(nets[1][key], nets[0][key], rtol=0, atol=1e-5)


def test_the_128_pixel_preset():
    from recon.cli.train import model_config, parse_options
    from recon.models.checkpoints import build_model
    from recon.operators.settings import make_operator

    options = parse_options(["--data", "head_ct", "--preset", "128", "--out", "x"])
    assert (options.size, options.mults, options.batch) == (128, (1, 2, 2, 4), 16)
    assert parse_options(["--data", "head_ct", "--preset", "128", "--batch", "4", "--out", "x"]).batch == 4
    model = build_model("edm", model_config(options))
    x = torch.rand(1, 1, 128, 128)
    with torch.no_grad():
        assert model(x, torch.tensor([0.5])).shape == x.shape
    assert make_operator("ct:16", 128).A(x).shape[0] == 1


def test_train_refuses_a_folder_smaller_than_a_batch(tmp_path):
    from recon.cli.errors import UsageError
    from recon.cli.train import run as train_main

    data = png_folder(tmp_path / "pngs", size=32)
    with pytest.raises(UsageError, match=r"only (\d+) training image.*--batch \1 or less"):
        train_main(["--data", str(data), "--size", "32", "--batch", "32", "--out", str(tmp_path / "p")])
    with pytest.raises(UsageError, match="neither a shipped data set .* nor a folder"):
        train_main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p")])
