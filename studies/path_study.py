"""The head-to-head of the path-guided chapter: the λ-free path steps against Song et al.'s step at λ = 1, at a tuned
λ (with the corrector's snr), at a per-image oracle λ (an upper bound chosen on the test images), the DDNM-style
projection of the estimate and DPS, all at one budget of network evaluations per image, on the protocol's off-grid
measurements; and the transfer test (settings tuned on one operator, applied unchanged to another).
"""

from __future__ import annotations

import torch

import recon
from recon.data.offgrid import fine_and_truth
from recon.guidance.path import evaluations_per_step
from recon.metrics import psnr, ssim
from recon.tuning import tune_method
from studies import protocol

# The path variants of the head-to-head; each runs budget // evaluations_per_step(**options) sampler levels.
PATH_VARIANTS = {"path (filter)": {"variant": "filter", "substeps": 1},
                 "path (grid)": {"variant": "grid", "points": 4, "lateral": 0},
                 "path (grid, 3 lanes)": {"variant": "grid", "points": 4, "lateral": 1}}
ORACLE_GRID = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)


def tune_baselines(task: protocol.Task, prior, budget: int, *, n_val: int, n_trials: int, seed: int,
                   device="cpu") -> dict:
    """λ and snr of the proximal step over predictor–corrector, and DPS's ζ, tuned on validation images at
    ``budget`` evaluations per image; ``label -> Tuned`` as dicts."""
    truth, fine = fine_and_truth(task.dataset, n_val, task.operator.image_shape[0], "val", seed)
    proximal = task.score_methods()[0]
    choices = {"tuned λ, snr (PC)": (proximal, {"steps": budget // 2, "sampler": "pc"}),
               "DPS": ("dps", {"steps": budget})}
    out = {}
    for label, (method, fixed) in choices.items():
        result = tune_method(method, task.operator, truth, prior, noise=task.noise, fine=fine, fixed=fixed,
                             n_trials=n_trials, name=f"path|{task.key}|{label}|{budget}", seed=seed, device=device)
        out[label] = {"method": method, "fixed": fixed, "best": result.best, "value": result.value,
                      "at_bound": result.at_bound, "seed": result.seed}
    return out


def oracle_lambda(task, prior, y, noise_std, truth, budget: int, *, seed: int, device="cpu") -> dict:
    """Per test image, the best λ of :data:`ORACLE_GRID` by its own PSNR (Euler–Maruyama, ``budget`` levels, the same
    sampler noise at every λ): an upper bound on any λ tuned per setting, chosen on the test images."""
    n, grid = y.shape[0], torch.tensor(ORACLE_GRID)
    y_all = y.repeat(len(grid), *([1] * (y.dim() - 1))).to(device)
    lam = grid.repeat_interleave(n).to(device)
    x, record = recon.reconstruct(y_all, task.operator, prior, task.score_methods()[0], noise_std=noise_std,
                                  seed=[seed + i for _ in grid for i in range(n)], steps=budget, lam=lam)
    scores = psnr(x.cpu(), truth.repeat(len(grid), 1, 1, 1)).reshape(len(grid), n)
    best, index = scores.argmax(0), torch.arange(n)
    chosen = x.cpu().reshape(len(grid), n, *x.shape[1:])[best, index]
    return {"psnr": scores[best, index].tolist(), "ssim": ssim(chosen, truth).tolist(),
            "residual": record.residual.cpu().reshape(len(grid), n)[best, index].tolist(), "nfe": record.nfe,
            "seconds_per_image": record.seconds / (len(grid) * n), "lam": grid[best].tolist()}


def run_rows(task, prior, tuned: dict, budget: int, *, n_images: int, seed: int, device="cpu",
             only: tuple[str, ...] | None = None) -> dict:
    """Every method of the head-to-head (or those labelled in ``only``) on the task's off-grid test images at
    ``budget`` evaluations per image."""
    truth, y, noise_std = protocol.test_data(task, n_images, seed)
    proximal = task.score_methods()[0]
    runs = {"λ = 1": (proximal, {"steps": budget, "lam": 1.0})}
    runs.update({label: (entry["method"], {**entry["fixed"], **entry["best"]}) for label, entry in tuned.items()})
    if task.noise is None:
        runs["DDNM (estimate projection)"] = ("ddnm", {"steps": budget})
    runs.update({label: ("path", {**options, "steps": budget // evaluations_per_step(**options)})
                 for label, options in PATH_VARIANTS.items()})
    rows = {}
    for label, (method, options) in runs.items():
        if only is not None and label not in only:
            continue
        rows[label] = protocol.test_method(task, prior, method, options, y, noise_std, truth, seed=seed,
                                           device=device)
        print(f"  {label}: {sum(rows[label]['psnr']) / n_images:.2f} dB, {rows[label]['nfe']} NFE", flush=True)
    if only is None or "oracle λ (test images)" in only:
        rows["oracle λ (test images)"] = {"method": proximal, "options": {"steps": budget},
                                          **oracle_lambda(task, prior, y, noise_std, truth, budget, seed=seed,
                                                          device=device)}
    return {"task": task.key, "name": task.name, "noise": task.noise_name, "noise_std": noise_std, "budget": budget,
            "rows": rows}

