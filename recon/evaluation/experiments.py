"""The book's heavy experiments, each a function of typed keyword options that returns a JSON-ready dict.

``scripts/make_results.py NAME`` runs one and writes ``results/NAME.json`` with its provenance; the notebooks read
the file and repeat a small part live (:func:`recon.evaluation.results.spot_check`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

import recon
from recon.data import brain_slices, head_ct_phantoms
from recon.evaluation.ablation import lambda_sweep
from recon.evaluation.benchmark import Setting, mean_se, noise_std_for, run_setting, tune_tv_weight
from recon.evaluation.metrics import psnr
from recon.evaluation.realism import denoising_residual
from recon.evaluation.tuning import tune_proximal

EXPERIMENTS: dict[str, Callable[..., dict]] = {}


def experiment(function: Callable[..., dict]) -> Callable[..., dict]:
    """Register an experiment under its function's name."""
    EXPERIMENTS[function.__name__] = function
    return function


def table_settings(*, image_size: int = 64, n_images: int = 16, noise_level: float = 0.01, ct_views=(8, 16, 23),
                   mri_accelerations=(4, 8), mri_center_fractions=(0.08, 0.04), steps: int = 60, n_val: int = 4,
                   seed: int = 0, tv_weights: dict | None = None) -> list[Setting]:
    """The results table's settings: CT and MRI, noise-free and noisy, every method with its options. TV's weight is
    chosen per setting on ``n_val`` validation images, unless ``tv_weights`` (``"name|noise" -> weight``) gives it."""
    prior_ct, prior_mr = recon.load_prior("head_ct"), recon.load_prior("brain")
    tasks = [(f"CT, {v} views", recon.ParallelBeamCT(image_size, v), head_ct_phantoms, prior_ct, "fbp")
             for v in ct_views]
    tasks += [(f"MRI, {a}x", recon.CartesianMRI(image_size, a, c, seed=seed), brain_slices, prior_mr, "zero_filled")
              for a, c in zip(mri_accelerations, mri_center_fractions)]
    settings = []
    for noise in (0.0, noise_level):
        for name, op, loader, prior, classical in tasks:
            key = f"{name}|{noise:g}"
            weight = (tv_weights or {}).get(key) or tune_tv_weight(op, loader(n_val, image_size, "val", seed), noise,
                                                                   seed=seed)
            methods = {classical: {"method": classical}, "pinv": {"method": "pinv"},
                       "tv": {"method": "tv", "weight": weight}, "dps": {"method": "dps", "steps": steps},
                       "proximal (Song et al.)": {"method": "proximal", "steps": steps}}
            if noise:
                methods["proximal, DDRM rule"] = {"method": "proximal_ddrm", "steps": steps}
            settings.append(Setting(name, op, loader(n_images, image_size, "test", seed), prior, noise, methods))
    return settings


@experiment
def results_table(*, n_images: int = 16, noise_level: float = 0.01, steps: int = 60, n_val: int = 4,
                  seed: int = 0) -> dict:
    """Every method on held-out test images, CT 8/16/23 views and MRI 4x/8x, noise-free and noisy."""
    settings = table_settings(n_images=n_images, noise_level=noise_level, steps=steps, n_val=n_val, seed=seed)
    rows = [row for setting in settings for row in run_setting(setting, seed=seed, progress=print)]
    tv_weights = {f"{s.name}|{s.noise_level:g}": s.methods["tv"]["weight"] for s in settings}
    options = {"n_images": n_images, "noise_level": noise_level, "steps": steps, "n_val": n_val, "seed": seed}
    return {"options": options, "tv_weights": tv_weights, "rows": rows}


def lambda_tasks(image_size: int = 64, ct_views: int = 16, mri_acceleration: int = 8, mri_center_fraction: float = 0.04,
                 seed: int = 0) -> dict:
    """The lam chapter's two tasks: ``key -> (name, operator, prior, loader)``."""
    return {
        "ct": (f"CT, {ct_views} views", recon.ParallelBeamCT(image_size, ct_views), recon.load_prior("head_ct"),
               head_ct_phantoms),
        "mri": (f"MRI, {mri_acceleration}x", recon.CartesianMRI(image_size, mri_acceleration, mri_center_fraction,
                                                               seed=seed), recon.load_prior("brain"), brain_slices),
    }


def study_record(study, x_test, op, prior, noise_level: float, steps: int, seed: int) -> dict:
    """A finished study's trials, its best point, and that point's PSNR on the test images (reported, never used to
    choose)."""
    best = study.best_params
    sigma = noise_std_for(op, x_test, noise_level)
    y = op.measure(x_test, sigma, torch.Generator().manual_seed(seed))
    x_hat, _ = recon.reconstruct(y, op, prior, method="proximal_ddrm", sampler="pc", steps=steps, lam=best["lam"],
                                 snr=best["snr"], noise_std=sigma, seed=seed)
    trials = [{"lam": t.params["lam"], "snr": t.params["snr"], "value": t.value} for t in study.trials]
    return {"best": best, "best_value": study.best_value, "test_psnr": mean_se(psnr(x_hat, x_test))[0],
            "trials": trials}


@experiment
def lambda_study(*, n_trials: int = 24, n_val: int = 4, n_images: int = 8, tuning_steps: int = 15,
                 noise_level: float = 0.01, snr_max: float = 1.0, seed: int = 0) -> dict:
    """optuna's TPE over (lam, snr) of the proximal step with the predictor–corrector sampler, per task and noise level,
    on validation images; the best point's test PSNR is reported."""
    studies = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, (_, op, prior, loader) in lambda_tasks(seed=seed).items():
            x_val, x_test = loader(n_val, 64, "val", seed), loader(n_images, 64, "test", seed)
            for noise_name, level in (("noise-free", 0.0), ("noisy", noise_level)):
                study = tune_proximal(op, x_val, prior, storage=Path(tmp) / "study.sqlite", n_trials=n_trials,
                                      study_name=f"{key}_{noise_name}", noise_level=level, steps=tuning_steps,
                                      seed=seed, snr_range=(0.01, snr_max))
                studies[f"{key}|{noise_name}"] = study_record(study, x_test, op, prior, level, tuning_steps, seed)
                print(key, noise_name, studies[f"{key}|{noise_name}"]["best"])
    options = {"n_trials": n_trials, "n_val": n_val, "n_images": n_images, "tuning_steps": tuning_steps,
               "noise_level": noise_level, "snr_max": snr_max, "seed": seed}
    return {"options": options, "studies": studies}


@experiment
def lambda_sweeps(*, lam_grid=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0), n_images: int = 8, steps: int = 30,
                  noise_level: float = 0.01, realism_sigma: float = 0.05, seed: int = 0) -> dict:
    """PSNR, SSIM, data residual and realism against lam on held-out test images, per task, noise-free and noisy
    (Euler–Maruyama, ``steps`` network evaluations, no final projection)."""
    sweeps = {}
    for key, (_, op, prior, loader) in lambda_tasks(seed=seed).items():
        x = loader(n_images, 64, "test", seed)
        truth = denoising_residual(prior, x, sigma=realism_sigma, generator=torch.Generator().manual_seed(seed))
        for noise_name, level in (("noise-free", 0.0), ("noisy", noise_level)):
            sweep = lambda_sweep(op, x, prior, lam_grid, noise_level=level, steps=steps, seed=seed,
                                 realism_sigma=realism_sigma)
            sweeps[f"{key}|{noise_name}"] = {
                "psnr": sweep.psnr.tolist(), "ssim": sweep.ssim.tolist(), "residual": sweep.residual.tolist(),
                "realism": sweep.realism.tolist(), "truth_realism": truth.tolist(), "noise_std": sweep.noise_std,
                "seconds": sweep.seconds}
            print(key, noise_name, [round(float(v), 2) for v in sweep.psnr.mean(1)])
    options = {"lam_grid": list(lam_grid), "n_images": n_images, "steps": steps, "noise_level": noise_level,
               "realism_sigma": realism_sigma, "seed": seed}
    return {"options": options, "sweeps": sweeps}
