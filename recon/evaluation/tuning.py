"""Bayesian optimisation of the proximal step's lam and the corrector's snr on validation images (optuna's TPE),
as Song et al. (2022) tuned theirs; the study lives in a SQLite file, so it can be resumed and inspected."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch

from recon.evaluation.benchmark import noisy_measurements
from recon.evaluation.metrics import psnr
from recon.operators.base import LinearOperator
from recon.reconstruction import reconstruct


def tune_proximal(operator: LinearOperator, images: torch.Tensor, prior, *, storage: str | Path, study_name: str,
                  n_trials: int = 20, noise_level: float = 0.0, steps: int = 30, seed: int = 0,
                  lam_range=(0.0, 1.0), snr_range=(0.01, 0.5), n_startup_trials: int = 8) -> optuna.Study:
    """Maximise mean validation PSNR over ``lam`` (uniform) and ``snr`` (log-uniform) with the predictor–corrector
    sampler; returns the study. Trials already in ``storage`` count toward ``n_trials`` (resume).

    The first ``n_startup_trials`` are random (TPE's start-up), the rest model-guided. Pass validation images only:
    the test split must never inform a tuned value.
    """
    y, noise_std = noisy_measurements(operator, images, noise_level, seed)

    def objective(trial: optuna.Trial) -> float:
        lam = trial.suggest_float("lam", *lam_range)
        snr = trial.suggest_float("snr", *snr_range, log=True)
        x, record = reconstruct(y, operator, prior, method="proximal_ddrm", sampler="pc", steps=steps, lam=lam,
                                snr=snr, noise_std=noise_std, seed=seed)
        trial.set_user_attr("residual", float(record.residual.mean()))
        return float(psnr(x, images).mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name=study_name, storage=f"sqlite:///{Path(storage)}",
                                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials),
                                load_if_exists=True)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if n_trials > done:
        study.optimize(objective, n_trials=n_trials - done)
    return study
