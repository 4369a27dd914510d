"""The book's heavy experiments, each a function of typed keyword options that returns a JSON-ready dict.

``scripts/make_results.py NAME`` runs one through :func:`run_experiment` (which records every option used) and
writes ``results/NAME.json`` with its provenance; the notebooks read the file and repeat a small part live
(:func:`recon.evaluation.results.spot_check`).
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path

import recon
from recon.data import brain_slices, head_ct_phantoms
from recon.evaluation.ablation import lambda_sweep
from recon.evaluation.benchmark import Setting, mean_se, noisy_measurements, run_setting, tune_tv_weight
from recon.evaluation.metrics import psnr
from recon.evaluation.realism import denoising_residual
from recon.evaluation.tuning import tune_proximal

EXPERIMENTS: dict[str, Callable[..., dict]] = {}
NOISES = {"noise-free": 0.0, "noisy": None}  # None: the experiment's noise_level


def experiment(function: Callable[..., dict]) -> Callable[..., dict]:
    """Register an experiment under its function's name."""
    EXPERIMENTS[function.__name__] = function
    return function


def run_experiment(name: str, **options) -> dict:
    """Run a registered experiment; the result carries ``"options"``: every option it ran with, defaults included."""
    function = EXPERIMENTS[name]
    bound = inspect.signature(function).bind(**options)
    bound.apply_defaults()
    used = {k: list(v) if isinstance(v, tuple) else v for k, v in bound.arguments.items()}
    return {"options": used, **function(**bound.arguments)}


def table_settings(*, image_size: int = 64, n_images: int = 16, noise_level: float = 0.01, ct_views=(8, 16, 23),
                   mri_accelerations=(4, 8), mri_center_fractions=(0.08, 0.04), steps: int = 60, n_val: int = 4,
                   seed: int = 0, tv_weights: dict | None = None) -> list[Setting]:
    """The results table's settings: CT and MRI, noise-free and noisy, every method with its options. TV's weight is
    chosen per setting on ``n_val`` validation images, unless ``tv_weights`` (``"name|noise" -> weight``) gives it.
    On noisy data Song et al.'s step is told the data are exact (``noise_std=0``), to show what that costs."""
    prior_ct, prior_mr = recon.load_prior("head_ct"), recon.load_prior("brain")
    tasks = [(f"CT, {v} views", recon.ParallelBeamCT(image_size, v), head_ct_phantoms, prior_ct, "fbp")
             for v in ct_views]
    tasks += [(f"MRI, {a}x", recon.CartesianMRI(image_size, a, c, seed=seed), brain_slices, prior_mr, "zero_filled")
              for a, c in zip(mri_accelerations, mri_center_fractions)]
    settings, tv_weights = [], tv_weights or {}
    for noise in (0.0, noise_level):
        for name, op, loader, prior, classical in tasks:
            key = f"{name}|{noise:g}"
            weight = tv_weights[key] if key in tv_weights else tune_tv_weight(
                op, loader(n_val, image_size, "val", seed), noise, seed=seed)
            methods = {classical: {"method": classical}, "pinv": {"method": "pinv"},
                       "tv": {"method": "tv", "weight": weight}, "dps": {"method": "dps", "steps": steps},
                       "proximal (Song et al.)": {"method": "proximal", "steps": steps, "noise_std": 0.0}}
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
    return {"tv_weights": tv_weights, "rows": rows}


def lambda_tasks(image_size: int = 64, ct_views: int = 16, mri_acceleration: int = 8, mri_center_fraction: float = 0.04,
                 seed: int = 0) -> dict:
    """The lam chapter's two tasks: ``key -> (name, operator, prior, loader)``."""
    return {
        "ct": (f"CT, {ct_views} views", recon.ParallelBeamCT(image_size, ct_views), recon.load_prior("head_ct"),
               head_ct_phantoms),
        "mri": (f"MRI, {mri_acceleration}x", recon.CartesianMRI(image_size, mri_acceleration, mri_center_fraction,
                                                               seed=seed), recon.load_prior("brain"), brain_slices),
    }


def for_each_lambda_case(noise_level: float, seed: int, run: Callable) -> dict:
    """``run(key, noise_name, level, op, prior, loader)`` for both tasks, noise-free and noisy; results by
    ``"task|noise"``."""
    results = {}
    for key, (_, op, prior, loader) in lambda_tasks(seed=seed).items():
        for noise_name, level in NOISES.items():
            level = noise_level if level is None else level
            results[f"{key}|{noise_name}"] = run(key, noise_name, level, op, prior, loader)
            print(key, noise_name, "done")
    return results


@experiment
def lambda_study(*, n_trials: int = 24, n_val: int = 4, n_images: int = 8, tuning_steps: int = 15,
                 noise_level: float = 0.01, snr_max: float = 1.0, seed: int = 0) -> dict:
    """optuna's TPE over (lam, snr) of the proximal step with the predictor–corrector sampler, per task and noise level,
    on validation images; the best point's test PSNR is reported (never used to choose)."""
    with tempfile.TemporaryDirectory() as tmp:

        def run(key, noise_name, level, op, prior, loader):
            study = tune_proximal(op, loader(n_val, 64, "val", seed), prior, storage=Path(tmp) / "study.sqlite",
                                  n_trials=n_trials, study_name=f"{key}_{noise_name}", noise_level=level,
                                  steps=tuning_steps, seed=seed, snr_range=(0.01, snr_max))
            x_test = loader(n_images, 64, "test", seed)
            y, sigma = noisy_measurements(op, x_test, level, seed)
            x_hat, _ = recon.reconstruct(y, op, prior, method="proximal_ddrm", sampler="pc", steps=tuning_steps,
                                         lam=study.best_params["lam"], snr=study.best_params["snr"], noise_std=sigma,
                                         seed=seed)
            trials = [{"lam": t.params["lam"], "snr": t.params["snr"], "value": t.value} for t in study.trials]
            return {"best": study.best_params, "best_value": study.best_value, "trials": trials,
                    "test_psnr": mean_se(psnr(x_hat, x_test))[0]}

        return {"studies": for_each_lambda_case(noise_level, seed, run)}


@experiment
def lambda_sweeps(*, lam_grid=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0), n_images: int = 8, steps: int = 30,
                  noise_level: float = 0.01, realism_sigma: float = 0.05, seed: int = 0) -> dict:
    """PSNR, SSIM, data residual and realism against lam on held-out test images, per task, noise-free and noisy
    (Euler–Maruyama, ``steps`` network evaluations, no final projection)."""

    def run(key, noise_name, level, op, prior, loader):
        x = loader(n_images, 64, "test", seed)
        truth = denoising_residual(prior, x, sigma=realism_sigma, generator=recon.random.generators([seed])[0])
        sweep = lambda_sweep(op, x, prior, lam_grid, noise_level=level, steps=steps, seed=seed,
                             realism_sigma=realism_sigma)
        return {"psnr": sweep.psnr.tolist(), "ssim": sweep.ssim.tolist(), "residual": sweep.residual.tolist(),
                "realism": sweep.realism.tolist(), "truth_realism": truth.tolist(), "noise_std": sweep.noise_std,
                "seconds": sweep.seconds}

    return {"sweeps": for_each_lambda_case(noise_level, seed, run)}


@experiment
def evaluation(*, n_images: int = 32, n_val: int = 8, n_trials: int = 12, nfe: int = 100, curve_nfes=(10, 30, 100,
               300, 1000), curve_images: int = 16, k: int = 8, seed: int = 0, device: str = "cpu") -> dict:
    """The evaluation protocol (recon.evaluation.protocol) on every task: methods tuned alike on validation images
    at ``nfe`` network evaluations, tested on ``n_images`` off-grid test images; the inverse-crime numbers of one task
    beside its honest ones; quality against NFE and posterior spread on two tasks."""
    from recon.evaluation import protocol

    priors = {name: recon.load_prior(name, device) for name in ("head_ct", "brain")}
    curve_tasks = {"CT, 16 views|" + protocol.LOW_DOSE.describe(), "MRI, 8x|noise-free"}
    tuned_by_setting, results = {}, []
    for task in protocol.tasks(seed=seed):
        print(task.key, flush=True)
        setting, prior = f"{task.name}|{task.noise_name}", priors[task.dataset]
        if setting not in tuned_by_setting:  # the anatomy-shift task shares its setting's validation tuning
            choices = protocol.candidates(task, nfe, with_pc=setting in curve_tasks)
            tuned_by_setting[setting] = protocol.tune_task(task, prior, choices, n_val=n_val, n_trials=n_trials,
                                                           seed=seed, device=device)
        tuned = tuned_by_setting[setting]
        entry = protocol.run_task(task, prior, tuned, n_images=n_images, seed=seed, device=device)
        if task.key == "CT, 16 views|noise-free|test":
            entry["inverse_crime"] = protocol.run_task(task, prior, tuned, n_images=n_images, seed=seed,
                                                       device=device, off_grid=False)["rows"]
        if setting in curve_tasks and task.split == "test":
            entry["nfe_curve"] = protocol.nfe_curve(task, prior, tuned, nfes=curve_nfes, n_images=curve_images,
                                                    seed=seed, device=device)
            entry["uncertainty"] = protocol.uncertainty(task, prior, tuned, k=k, n_images=curve_images, seed=seed,
                                                        device=device)
        results.append({**entry, "tuned": tuned})
    return {"tasks": results}
