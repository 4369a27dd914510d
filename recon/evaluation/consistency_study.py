"""The consistency chapter's head-to-head: a consistency model with the proximal step at 1, 2, 4 and 8 network
evaluations against the diffusion prior with the proximal step at the same budgets and at 60, 200 and 1000, one
Tweedie estimate plus a proximal step, DPS, and the consistency model with the hard projection (CoSIGN-style) and with
the consistency paper's replacement step; every free parameter (λ, the re-noising levels, Tweedie's σ, DPS's ζ) tuned
on validation images with the protocol's trial budget at the budget it is tested with.
"""

from __future__ import annotations

import torch

import recon
from recon.data.offgrid import fine_and_truth
from recon.evaluation import protocol
from recon.evaluation.realism import denoising_residual
from recon.evaluation.tuning import tune_method

CM_BUDGETS = (1, 2, 4, 8)
DIFFUSION_BUDGETS = (1, 2, 4, 8, 60, 200, 1000)
# The diffusion prior at 1000 evaluations runs with the λ tuned at 200 (tuning at 1000 costs 80,000 evaluations per
# setting); every other row is tuned at its own budget.
BORROWED = {1000: 200}


def cm_rows(task: protocol.Task) -> dict[str, dict]:
    """``label -> fixed options`` of the consistency-sampler rows at one budget (``steps`` added per budget)."""
    rows = {"CM + proximal step": {"guide": "proximal"},
            "CM + projection (CoSIGN-style)": {"guide": "proximal", "lam": 1.0}}
    if task.noise is None:
        rows["CM + replacement (CM paper)"] = {"guide": "replacement"}
    else:
        rows["CM + DDRM rule"] = {"guide": "ddrm"}
    return rows


def choices(task: protocol.Task) -> dict[str, tuple[str, str, dict]]:
    """``label -> (prior kind, method, fixed options)`` of every tuned row of a task; the prior kind is ``"cm"`` (the
    consistency model) or ``"diffusion"``."""
    out = {}
    for n in CM_BUDGETS:
        for label, fixed in cm_rows(task).items():
            out[f"{label}|{n}"] = ("cm", "consistency", {**fixed, "steps": n})
        out[f"diffusion, CM sampler + proximal step|{n}"] = ("diffusion", "consistency", {"guide": "proximal",
                                                                                          "steps": n})
    proximal = task.score_methods()[0]
    for n in DIFFUSION_BUDGETS:
        if n not in BORROWED:
            out[f"diffusion + proximal step|{n}"] = ("diffusion", proximal, {"steps": n})
    out["Tweedie + proximal step|1"] = ("diffusion", "tweedie", {})
    out["DPS|60"] = ("diffusion", "dps", {"steps": 60})
    return out


def tune_rows(task: protocol.Task, priors: dict, *, n_val: int, n_trials: int, seed: int, device="cpu") -> dict:
    """Every row of :func:`choices` tuned on the task's validation images; ``label -> tuned entry``."""
    truth, fine = fine_and_truth(task.dataset, n_val, task.operator.image_shape[0], "val", seed)
    tuned = {}
    for label, (kind, method, fixed) in choices(task).items():
        result = tune_method(method, task.operator, truth, priors[kind], noise=task.noise, fine=fine, fixed=fixed,
                             n_trials=n_trials, name=f"cm|{task.key}|{label}", seed=seed, device=device)
        tuned[label] = {"prior": kind, "method": method, "fixed": fixed, "best": result.best, "value": result.value,
                        "at_bound": result.at_bound, "seed": result.seed}
    for n, source in BORROWED.items():
        entry = tuned[f"diffusion + proximal step|{source}"]
        tuned[f"diffusion + proximal step|{n}"] = {**entry, "fixed": {**entry["fixed"], "steps": n},
                                                   "borrowed_from": source}
    return tuned


def test_rows(task: protocol.Task, priors: dict, tuned: dict, *, n_images: int, seed: int, device="cpu") -> dict:
    """Every tuned row on the task's off-grid test images: per-image PSNR, SSIM, residual, NFE, seconds."""
    truth, y, noise_std = protocol.test_data(task, n_images, seed)
    rows = {}
    for label, entry in tuned.items():
        options = {**entry["fixed"], **entry["best"]}
        rows[label] = protocol.test_method(task, priors[entry["prior"]], entry["method"], options, y, noise_std,
                                           truth, seed=seed, device=device)
        print(f"  {label}: {sum(rows[label]['psnr']) / n_images:.2f} dB ({rows[label]['nfe']} NFE)", flush=True)
    return {"task": task.key, "name": task.name, "noise": task.noise_name, "noise_std": noise_std, "rows": rows}


def unconditional_realism(dataset: str, priors: dict, *, n: int, seed: int, sigma: float = 0.05,
                          device="cpu") -> dict:
    """The validated realism measure (the diffusion prior's denoising residual at ``sigma``) of ``n`` unconditional
    samples: the consistency model at 1 and 2 steps, the diffusion prior at 2 and 60 Euler–Maruyama steps, and the
    test images themselves."""
    judge = priors["diffusion"]
    samples = {"CM, 1 step": recon.sample_prior(priors["cm"], n, steps=1, seed=seed, sampler="consistency"),
               "CM, 2 steps": recon.sample_prior(priors["cm"], n, steps=2, seed=seed, sampler="consistency"),
               "diffusion, 2 steps": recon.sample_prior(judge, n, steps=2, seed=seed),
               "diffusion, 60 steps": recon.sample_prior(judge, n, steps=60, seed=seed)}
    truth, _ = fine_and_truth(dataset, n, 64, "test", seed)
    samples["test images"] = truth.to(device)
    return {label: denoising_residual(judge, x, sigma=sigma, generator=torch.Generator(device=x.device)
                                      .manual_seed(seed)).tolist() for label, x in samples.items()}
