"""The stored results reproduce through the studies' one tune/test pipeline: for a few rows of each results file, the
first test images are measured as in the stored run (the whole batch, whose noise level the images share), the
stored tuned values are run with the stored seed, and each image's PSNR matches the file within 0.01 dB. The
network runs in the precision the file's provenance records; a row this machine cannot compute in that precision is
skipped with the reason, never matched at a wider tolerance."""

from __future__ import annotations

import functools

import pytest

import recon
from recon.models.precision import resolve
from studies import protocol
from studies.protocol import Choice
from studies.results import load_results, tuned_from_json

TOLERANCE_DB = 0.01
N_FIRST = 2  # images per row: image i of a batch uses seed + i, so the first images reproduce alone


@functools.cache
def stored(name: str) -> dict:
    return load_results(f"results/{name}.json")


@functools.cache
def prior(name: str):
    return recon.load_prior(name)


def precision_or_skip(name: str) -> str:
    """The network precision the file records; skip where it was computed on another kind of device or this CPU
    computes that precision otherwise (emulated bf16 rounds differently)."""
    hardware = stored(name)["provenance"]["hardware"]
    if "CUDA" in hardware:
        pytest.skip(f"{name}.json was computed on a GPU ({hardware}); its bf16 kernels differ from a CPU's")
    precision = "bf16" if "precision bf16" in hardware else "fp32"
    if precision == "bf16" and resolve("auto", "cpu") != "bf16":
        pytest.skip(f"{name}.json records native bf16 ({hardware}); this CPU would emulate it")
    return precision


def first_images(task: protocol.Task, n_stored: int, seed: int, n: int = N_FIRST) -> protocol.Measured:
    """The first ``n`` test images measured as in the stored run: noise-free data alone (images and ``A`` act per
    image); noisy data within the stored batch, whose noise level (and, for MRI, noise draw) the images share."""
    return protocol.measured(task, n if task.noise is None else n_stored, seed).first(n)


def check(data: protocol.Measured, choice: Choice, stored_psnr: list[float], *, seed: int, n: int = N_FIRST) -> None:
    _, row = protocol.reconstruct_row(data.first(n), choice, seed=seed)
    assert row.psnr == pytest.approx(stored_psnr[:n], abs=TOLERANCE_DB), (choice.method, row.psnr, stored_psnr[:n])


def with_precision(model, precision: str):
    if model is not None:
        model.precision = precision
    return model


EVALUATION = [("CT, 16 views|noise-free|test", "fbp", 2), ("CT, 16 views|noise-free|test", "tv", 2),
              ("CT, 16 views|Poisson, 1e+04 photons per detector bin and view|test", "fbp", 2),
              ("MRI, 8x|complex Gaussian, SNR 30|test", "zero_filled", 2), ("MRI, 8x|noise-free|test", "proximal", 1)]


@pytest.mark.parametrize("key, method, n", EVALUATION)
def test_evaluation_rows_reproduce(key, method, n):
    results, precision = stored("evaluation")["results"], precision_or_skip("evaluation")
    entry = next(e for e in results["tasks"] if e["task"] == key)
    row = next(r for r in entry["rows"] if r["method"] == method)
    task = {t.key: t for t in protocol.tasks(seed=results["options"]["seed"])}[key]
    if method in entry["tuned"]:
        tuned = tuned_from_json(entry["tuned"][method])
        assert tuned.options == row["options"]
    checkpoint = entry.get("prior", task.dataset)  # the prior the stored run used (older files: the family's)
    model = with_precision(prior(checkpoint), precision) if method in task.score_methods() else None
    data = first_images(task, len(row["psnr"]), results["options"]["seed"], n)
    assert task.noise is None or data.measurement.noise_std == pytest.approx(entry["noise_std"])
    check(data, Choice(method, row["options"], model), row["psnr"], seed=results["options"]["seed"], n=n)


def test_lambda_study_reproduces_its_test_psnr():
    from studies.experiments import lambda_tasks

    results, precision = stored("lambda_study")["results"], precision_or_skip("lambda_study")
    options, key = results["options"], "CT, 16 views|noise-free|test"
    entry, task = results["studies"][key], lambda_tasks(options["seed"])[key]
    choice = Choice(entry["method"], {"steps": options["levels"], "sampler": "pc", **entry["best"]},
                    with_precision(prior(task.dataset), precision))
    check(first_images(task, options["n_images"], options["seed"], 1), choice, entry["test_psnr"],
          seed=options["seed"], n=1)


def test_consistency_rows_reproduce():
    results = stored("consistency")["results"]
    precision = precision_or_skip("consistency")
    entry = next(e for e in results["head_to_head"] if e["task"] == "CT, 16 views|noise-free|test")
    tuned = tuned_from_json(entry["tuned"]["CM + proximal step|1"])
    task = {t.key: t for t in protocol.tasks(seed=results["options"]["seed"])}[entry["task"]]
    choice = Choice.tuned(tuned, with_precision(prior("head_ct_cm"), precision))
    check(first_images(task, results["options"]["n_images"], results["options"]["seed"]), choice,
          entry["rows"]["CM + proximal step|1"]["psnr"], seed=results["options"]["seed"])


@pytest.mark.parametrize("row", ["fbp", "network (single)", "prior, λ carried over"])
def test_shift_rows_reproduce(row):
    from studies.shift_study import shift_grid

    results, precision = stored("shift")["results"], precision_or_skip("shift")
    seed = results["options"]["seed"]
    point = next(p for p in results["points"] if p["setting"] == "ct:16" and p["noise"] == "noise-free")
    shift = next(s for s in shift_grid() if s.setting == "ct:16" and s.noise is None)
    stored_row, task = point["rows"][row], shift.task(seed)
    model = None
    if row.startswith("prior"):
        tuned = tuned_from_json(point["tuned"]["carried"])
        assert tuned.options == stored_row["options"]
        model = with_precision(prior(shift.dataset), precision)
    data = first_images(task, len(stored_row["psnr"]), seed)
    check(data, Choice(stored_row["method"], stored_row["options"], model), stored_row["psnr"], seed=seed,
          n=1 if model is not None else N_FIRST)


@pytest.mark.parametrize("row", ["fbp", "TV (tuned on head_ct validation)", "network (single, head_ct)"])
def test_real_scan_rows_reproduce(row):
    from recon.data import archives
    from recon.operators.noise import simulate
    from recon.operators.settings import make_operator
    from studies.real_study import real_images

    results = stored("real_scans")["results"]
    precision_or_skip("real_scans")
    seed, factor = results["options"]["seed"], results["options"]["factor"]
    entry = results["ct"][0]
    try:
        _, truth, fine = real_images("ct", factor=factor)
    except archives.FetchError as error:
        pytest.skip(f"the real CT scans cannot be fetched here: {error}")
    operator = make_operator(entry["setting"], seed=seed)
    data = protocol.Measured(truth, simulate(operator, truth, None, seed, fine))
    stored_row = entry["rows"][row]
    if row.startswith("TV"):
        assert tuned_from_json(entry["tuned"]["shipped"]["tv"]).options == stored_row["options"]
    check(data, Choice(stored_row["method"], stored_row["options"]), stored_row["psnr"], seed=seed)
