"""The head-to-head of the path-guided chapter: the λ-free path steps against Song et al.'s step at λ = 1, at a tuned
λ (with the corrector's snr), at a per-image oracle λ (an upper bound chosen on the test images), the DDNM-style
projection of the estimate and DPS, all at one budget of network evaluations per image, on the protocol's off-grid
measurements; and the transfer test (settings tuned on one operator, applied unchanged to another). This module
owns the chapter's rows (:func:`choices`), its tuned baselines and its oracle; tuning and testing are the
protocol's (:mod:`studies.protocol`).
"""

from __future__ import annotations

import dataclasses

import torch

import recon
from recon.methods import METHODS
from recon.metrics import psnr, ssim
from studies import protocol
from studies.protocol import Choice, Measured, Row
from studies.results import Brief

# The path variants of the head-to-head; each runs budget // (its evaluations per step) sampler levels.
PATH_VARIANTS = {"path (filter)": {"variant": "filter", "substeps": 1},
                 "path (grid)": {"variant": "grid", "points": 4, "lateral": 0},
                 "path (grid, 3 lanes)": {"variant": "grid", "points": 4, "lateral": 1}}
ORACLE_GRID = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)
ORACLE = "oracle λ (test images)"


def path_options(options: dict, budget: int) -> dict:
    """A path variant's options at ``budget`` network evaluations per image."""
    return {**options, **METHODS["path"].budget_options(budget, options)}


def tune_baselines(task: protocol.Task, prior, budget: int, *, n_val: int, n_trials: int, seed: int,
                   device="cpu") -> dict[str, Brief]:
    """λ and snr of the proximal step over predictor–corrector, and DPS's ζ, tuned on validation images at
    ``budget`` evaluations per image."""
    proximal = task.score_methods()[0]
    baselines = {"tuned λ, snr (PC)": Choice(proximal, protocol.budget_options(proximal, budget, {"sampler": "pc"}),
                                              prior),
                 "DPS": Choice("dps", protocol.budget_options("dps", budget), prior)}
    tuned = protocol.tune_all(task, baselines, n_val=n_val, n_trials=n_trials, seed=seed, device=device,
                              name=lambda label: f"path|{task.key}|{label}|{budget}")
    return {label: Brief(t) for label, t in tuned.items()}


@dataclasses.dataclass
class OracleRow(Row):
    """The oracle's row: per image, the best λ of :data:`ORACLE_GRID` by its own PSNR."""

    lam: list[float] = dataclasses.field(default_factory=list)


def oracle_lambda(task: protocol.Task, prior, data: Measured, budget: int, *, seed: int, device="cpu") -> OracleRow:
    """Per test image, the best λ of :data:`ORACLE_GRID` by its own PSNR (Euler–Maruyama, ``budget`` levels, the same
    sampler noise at every λ): an upper bound on any λ tuned per setting, chosen on the test images."""
    n, grid, method = len(data.truth), torch.tensor(ORACLE_GRID), task.score_methods()[0]
    x, record = recon.reconstruct(protocol.tile(data.measurement, len(grid)).to(device), prior=prior, method=method,
                                  seed=[seed + i for _ in grid for i in range(n)], steps=budget,
                                  lam=grid.repeat_interleave(n).to(device))
    scores = psnr(x.cpu(), data.truth.repeat(len(grid), 1, 1, 1)).reshape(len(grid), n)
    best, index = scores.argmax(0), torch.arange(n)
    chosen = x.cpu().reshape(len(grid), n, *x.shape[1:])[best, index]
    return OracleRow(method, {"steps": budget}, scores[best, index].tolist(), ssim(chosen, data.truth).tolist(),
                     record.residual.cpu().reshape(len(grid), n)[best, index].tolist(), record.nfe, record.seconds / (len(grid) * n),
                     grid[best].tolist())


def choices(task: protocol.Task, prior, tuned: dict[str, Brief], budget: int) -> dict[str, Choice]:
    """``label -> Choice`` of every row of the head-to-head but the oracle, at ``budget`` evaluations per image."""
    proximal = task.score_methods()[0]
    out = {"λ = 1": Choice(proximal, {"steps": budget, "lam": 1.0}, prior)}
    out.update({label: Choice.tuned(entry.tuned, prior) for label, entry in tuned.items()})
    if task.noise is None:
        out["DDNM (estimate projection)"] = Choice("ddnm", {"steps": budget}, prior)
    out.update({label: Choice("path", path_options(options, budget), prior) for label, options in PATH_VARIANTS.items()})
    return out


def run_rows(task: protocol.Task, prior, tuned: dict[str, Brief], budget: int, *, n_images: int, seed: int,
             device="cpu", only: tuple[str, ...] | None = None) -> dict:
    """Every method of the head-to-head (or those labelled in ``only``) on the task's off-grid test images at
    ``budget`` evaluations per image."""
    data = protocol.measured(task, n_images, seed)
    runs = {k: c for k, c in choices(task, prior, tuned, budget).items() if only is None or k in only}
    rows = protocol.evaluate_all(data, runs, seed=seed, device=device)
    if only is None or ORACLE in only:
        rows[ORACLE] = oracle_lambda(task, prior, data, budget, seed=seed, device=device)
    return {**task.header(), "noise_std": data.measurement.noise_std, "budget": budget, "rows": rows}
