"""The evaluation protocol every chapter is judged by (the "trustworthy evaluation" issue), and the one tune/test
pipeline every chapter's study runs through:

* measurements simulated off the reconstruction grid (:func:`recon.data.fine_and_truth`, ``operator.A_fine``) with
  physical noise (:mod:`recon.operators.noise`): :func:`measured`, a :class:`Measured`;
* every free parameter tuned by :func:`recon.tuning.tune_method` on validation images, with the same trial
  budget for every method and setting, at the network-evaluation budget the method is then tested with:
  :func:`tune_all` of :class:`Choice` s, giving :class:`recon.tuning.Tuned` s;
* test images never choose a setting: :func:`evaluate_all` gives one typed :class:`Row` per method (per-image PSNR,
  SSIM and residual, NFE, seconds), which stays typed until :func:`studies.results.to_json` writes the study.

This module owns :class:`Task` and the protocol's tasks, candidates and priors; the chapters' studies own their
rows. Paired differences with bootstrap intervals are :mod:`studies.statistics`; posterior spread
:mod:`studies.uncertainty`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch

import recon
from recon.data.offgrid import fine_and_truth
from recon.methods import METHODS
from recon.metrics import psnr, ssim
from recon.operators.noise import ComplexGaussianMRI, Measurement, PoissonCT, simulate
from recon.tuning import Tuned, tune_method

LOW_DOSE, MRI_SNR = PoissonCT(flux=1e4), ComplexGaussianMRI(snr=30.0)
FAMILIES = ("head_ct", "brain")  # the data families of the protocol's tasks
# The prior each family's tasks use in the evaluation, real-scan and shift studies: for the brain tasks the prior
# trained on synthetic heads (brain_synth), which replaced the brain prior that had memorised its training slabs
# (benchmarks/prior_gap.py). The lambda, path-guided and consistency chapters keep the priors of their stored runs.
PRIORS = {"head_ct": "head_ct", "brain": "brain_synth"}


@dataclasses.dataclass
class Task:
    """One measurement setting: an operator, the images (data family and test split), the prior, the noise."""

    name: str
    operator: object
    dataset: str
    noise: object = None
    split: str = "test"
    classical: str = "fbp"

    @property
    def noise_name(self) -> str:
        return "noise-free" if self.noise is None else self.noise.describe()

    @property
    def key(self) -> str:
        return f"{self.name}|{self.noise_name}|{self.split}"

    def score_methods(self) -> list[str]:
        """Song et al.'s step for noise-free data, the DDRM rule for noisy data; DPS for both."""
        return ["proximal" if self.noise is None else "proximal_ddrm", "dps"]

    def header(self) -> dict:
        """The task's names as a results file's entry starts: ``task`` (its key), ``name``, ``noise``."""
        return {"task": self.key, "name": self.name, "noise": self.noise_name}


def tasks(size: int = 64, seed: int = 0) -> list[Task]:
    """CT 8 and 16 views, noise-free and low-dose; MRI 4x and 8x, noise-free and at SNR 30 (in-distribution brain
    slices); MRI 8x on the anatomy-shift slices."""
    ct = [recon.ParallelBeamCT(size, v) for v in (8, 16)]
    mri = [recon.CartesianMRI(size, a, c, seed=seed) for a, c in ((4, 0.08), (8, 0.04))]
    out = [Task(f"CT, {op.n_views} views", op, "head_ct", noise) for noise in (None, LOW_DOSE) for op in ct]
    out += [Task(f"MRI, {op.acceleration}x", op, "brain", noise, classical="zero_filled")
            for noise in (None, MRI_SNR) for op in mri]
    out.append(Task(f"MRI, {mri[1].acceleration}x", mri[1], "brain", None, "test_shift", "zero_filled"))
    return out


def load_priors(device="cpu", names=FAMILIES) -> dict:
    """``name -> prior`` of the shipped checkpoints ``names`` (by default the one named like each data family)."""
    return {name: recon.load_prior(name, device) for name in names}


def protocol_priors(device="cpu") -> dict:
    """``data family -> prior`` of :data:`PRIORS`, the priors of the evaluation, real-scan and shift studies."""
    return {family: recon.load_prior(name, device) for family, name in PRIORS.items()}


@dataclasses.dataclass(frozen=True)
class Choice:
    """A method with options and the prior it runs with (None for a method that needs none). Tuned, ``options`` are
    the fixed ones (the rest are searched); tested, they are all of them."""

    method: str
    options: dict
    prior: object = None

    @classmethod
    def tuned(cls, tuned: Tuned, prior=None) -> Choice:
        """The tuned method with its fixed and best options."""
        return cls(tuned.method, tuned.options, prior)


def budget_options(method: str, nfe: int, fixed: dict | None = None) -> dict:
    """The options that give ``method`` a budget of ``nfe`` network evaluations per image (its registered budget
    option, :meth:`recon.methods.Method.budget_options`); TV's iteration count, its default, stays in the results."""
    fixed = fixed or {}
    if method == "tv":  # no network: the stored results record its iteration count, the registered default
        return {"iters": METHODS["tv"].defaults["iters"], **fixed}
    return {**METHODS[method].budget_options(nfe, fixed), **fixed}


def candidates(task: Task, nfe: int, prior=None, with_pc: bool = False) -> dict[str, Choice]:
    """``label -> Choice`` (fixed options) of every tunable method of a task at a budget of ``nfe`` network
    evaluations; ``with_pc`` adds the proximal step over the predictor–corrector sampler (``nfe / 2`` levels)."""
    out = {m: Choice(m, budget_options(m, nfe), prior) for m in ["tv", *task.score_methods()]}
    if with_pc:
        proximal = task.score_methods()[0]
        out[f"{proximal} (pc)"] = Choice(proximal, budget_options(proximal, nfe, {"sampler": "pc"}), prior)
    return out


def tune_all(task: Task, choices: dict[str, Choice], *, n_val: int, n_trials: int, seed: int, device="cpu",
             space: dict | None = None, name: Callable[[str], str] | None = None,
             search: str = "tpe", on_tuned: Callable[[str, Tuned], None] | None = None) -> dict[str, Tuned]:
    """Every choice tuned alike on the task's first ``n_val`` validation images (off-grid, the task's noise):
    ``label -> Tuned``. ``space`` replaces the methods' own search spaces; ``name(label)`` names each study (its
    sampler's seed derives from the name), by default ``"{task name}|{noise}|{label}"``; ``search`` is
    :func:`recon.tuning.search_plan`'s; ``on_tuned(label, tuned)`` is called after each (a long run saves there)."""
    truth, fine = fine_and_truth(task.dataset, n_val, task.operator.image_shape[0], "val", seed)
    name = name or (lambda label: f"{task.name}|{task.noise_name}|{label}")
    tuned = {}
    for label, choice in choices.items():
        tuned[label] = tune_method(choice.method, task.operator, truth, choice.prior, noise=task.noise, fine=fine,
                                   fixed=choice.options, n_trials=n_trials, name=name(label), seed=seed,
                                   device=device, space=space, search=search)
        print(f"  tuned {label}: {tuned[label].best} ({tuned[label].value:.2f} dB on validation)", flush=True)
        if on_tuned is not None:
            on_tuned(label, tuned[label])
    return tuned


@dataclasses.dataclass
class Measured:
    """Test images ``truth`` ``(N, 1, H, W)`` and their :class:`recon.operators.noise.Measurement`."""

    truth: torch.Tensor
    measurement: Measurement

    def first(self, n: int) -> Measured:
        """The first ``n`` images and their measurements, as measured in this batch: the images and a method's sampler
        noise are drawn per image, but the measurement noise (MRI) and the noise level (CT, MRI) are the batch's, so
        measuring the first ``n`` alone gives other data."""
        return Measured(self.truth[:n], dataclasses.replace(self.measurement, y=self.measurement.y[:n]))


def measured(task: Task, n_images: int, seed: int, off_grid: bool = True) -> Measured:
    """The task's first ``n_images`` images of its split, measured off the reconstruction grid (or on it,
    ``off_grid=False``: the inverse crime) with the task's noise."""
    truth, fine = fine_and_truth(task.dataset, n_images, task.operator.image_shape[0], task.split, seed)
    return Measured(truth, simulate(task.operator, truth, task.noise, seed, fine if off_grid else None))


@dataclasses.dataclass
class Row:
    """One method on test measurements: per-image PSNR, SSIM and relative data residual (None where a results file
    does not keep it), network evaluations per image, seconds per image."""

    method: str
    options: dict
    psnr: list[float]
    ssim: list[float]
    residual: list[float] | None
    nfe: int
    seconds_per_image: float

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def reconstruct_row(data: Measured, choice: Choice, *, seed: int, device="cpu") -> tuple[torch.Tensor, Row]:
    """The reconstructions (on the CPU, unclamped) of a choice on the test measurements, and its :class:`Row`."""
    start = time.perf_counter()
    x, record = recon.reconstruct(data.measurement.to(device), prior=choice.prior, method=choice.method, seed=seed,
                                  **choice.options)
    seconds = (time.perf_counter() - start) / len(x)
    x = x.cpu()
    return x, Row(choice.method, choice.options, psnr(x, data.truth).tolist(), ssim(x, data.truth).tolist(),
                  record.residual.tolist(), record.nfe, seconds)


def evaluate_all(data: Measured, choices: dict[str, Choice], *, seed: int, device="cpu",
                 keep: Callable[[str, torch.Tensor], None] | None = None) -> dict[str, Row]:
    """Every choice on the test measurements: ``label -> Row``; ``keep(label, x)`` receives each reconstruction."""
    rows = {}
    for label, choice in choices.items():
        x, rows[label] = reconstruct_row(data, choice, seed=seed, device=device)
        if keep is not None:
            keep(label, x)
        print(f"  {label}: {sum(rows[label].psnr) / len(x):.2f} dB ({rows[label].nfe} NFE)", flush=True)
    return rows


def tile(measurement: Measurement, k: int) -> Measurement:
    """The measurement repeated ``k`` times along the batch (one batched pass over ``k`` settings or samples)."""
    y = measurement.y
    return dataclasses.replace(measurement, y=y.repeat(k, *([1] * (y.dim() - 1))))
