"""The evaluation protocol every chapter is judged by (the "trustworthy evaluation" issue):

* measurements simulated off the reconstruction grid (:func:`recon.data.fine_and_truth`, ``operator.A_fine``) with
  physical noise (:mod:`recon.operators.noise`);
* every free parameter tuned by :func:`recon.tuning.tune_method` on validation images, with the same trial
  budget for every method and setting, at the network-evaluation budget the method is then tested with;
* test images never choose a setting; paired differences with bootstrap intervals
  (:mod:`studies.statistics`); posterior spread (:mod:`studies.uncertainty`).
"""

from __future__ import annotations

import dataclasses
import time

import recon
from recon.data.offgrid import fine_and_truth
from recon.metrics import psnr, ssim
from recon.operators.noise import ComplexGaussianMRI, PoissonCT, simulate
from recon.tuning import tune_method

LOW_DOSE, MRI_SNR = PoissonCT(flux=1e4), ComplexGaussianMRI(snr=30.0)


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


def fixed_options(method: str, nfe: int) -> dict:
    """The options a method is not tuned over: its network-evaluation budget (one per Euler–Maruyama step)."""
    return {"iters": 300} if method == "tv" else {"steps": nfe} if method in ("proximal", "proximal_ddrm", "dps") else {}


def candidates(task: Task, nfe: int, with_pc: bool = False) -> dict[str, tuple[str, dict]]:
    """``label -> (method, fixed options)`` of every tunable method of a task at a budget of ``nfe`` network
    evaluations; ``with_pc`` adds the proximal step over the predictor–corrector sampler (``nfe / 2`` levels)."""
    out = {m: (m, fixed_options(m, nfe)) for m in ["tv", *task.score_methods()]}
    if with_pc:
        proximal = task.score_methods()[0]
        out[f"{proximal} (pc)"] = (proximal, {"steps": nfe // 2, "sampler": "pc"})
    return out


def tune_task(task: Task, prior, choices: dict, *, n_val: int, n_trials: int, seed: int, device="cpu",
              space: dict | None = None) -> dict:
    """Every candidate of the task tuned alike on its validation images; ``label -> Tuned`` as a dict. ``space``
    replaces the methods' own search spaces (:data:`recon.tuning.SEARCH_SPACES`)."""
    truth, fine = fine_and_truth(task.dataset, n_val, task.operator.image_shape[0], "val", seed)
    tuned = {}
    for label, (method, fixed) in choices.items():
        result = tune_method(method, task.operator, truth, prior, noise=task.noise, fine=fine, fixed=fixed,
                             n_trials=n_trials, name=f"{task.name}|{task.noise_name}|{label}", seed=seed,
                             device=device, space=space)
        tuned[label] = dataclasses.asdict(result)
        print(f"  tuned {label}: {result.best} ({result.value:.2f} dB on validation)", flush=True)
    return tuned


def test_data(task: Task, n_images: int, seed: int, off_grid: bool = True):
    """The task's first ``n_images`` images of its split and their measurements, simulated off the reconstruction grid
    (or on it, ``off_grid=False``: the inverse crime) with the task's noise: ``(truth, y, noise_std)``."""
    truth, fine = fine_and_truth(task.dataset, n_images, task.operator.image_shape[0], task.split, seed)
    y, noise_std = simulate(task.operator, truth, task.noise, seed, fine if off_grid else None)
    return truth, y, noise_std


def test_method(task: Task, prior, method: str, options: dict, y, noise_std: float, truth, *, seed: int,
                device="cpu") -> dict:
    """One method on the task's test measurements: per-image PSNR, SSIM and residual, NFE, seconds per image."""
    start = time.perf_counter()
    x, record = recon.reconstruct(y.to(device), task.operator, prior, method, noise_std=noise_std, seed=seed,
                                  **options)
    seconds = (time.perf_counter() - start) / len(x)
    x = x.cpu()
    return {"method": method, "options": options, "psnr": psnr(x, truth).tolist(), "ssim": ssim(x, truth).tolist(),
            "residual": record.residual.tolist(), "nfe": record.nfe, "seconds_per_image": seconds}


def run_task(task: Task, prior, tuned: dict, *, n_images: int, seed: int, device="cpu", off_grid: bool = True) -> dict:
    """The task's test images measured (off-grid unless told otherwise) and reconstructed by every method with its
    tuned options; one row per method."""
    truth, y, noise_std = test_data(task, n_images, seed, off_grid)
    methods = {task.classical: {}, "tv": None, **{m: None for m in task.score_methods()}}
    rows = []
    for method, options in methods.items():
        options = {**tuned[method]["fixed"], **tuned[method]["best"]} if options is None else options
        rows.append(test_method(task, prior, method, options, y, noise_std, truth, seed=seed, device=device))
        print(f"  {method}: {sum(rows[-1]['psnr']) / n_images:.2f} dB", flush=True)
    return {"task": task.key, "name": task.name, "noise": task.noise_name, "split": task.split,
            "off_grid": off_grid, "noise_std": noise_std, "rows": rows}


def nfe_curve(task: Task, prior, tuned: dict, *, nfes, n_images: int, seed: int, device="cpu") -> dict:
    """PSNR against network evaluations for every score method of the task (Euler–Maruyama; the proximal family
    also with the predictor–corrector sampler, two evaluations per level), each with the options tuned at the
    protocol's budget. Returns ``method -> {nfe: per-image PSNR}``."""
    truth, y, noise_std = test_data(task, n_images, seed)
    curves = {}
    for label, entry in tuned.items():
        if label == "tv":
            continue
        method, per_level = entry["method"], 2 if entry["fixed"].get("sampler") == "pc" else 1
        runs = {}
        for nfe in nfes:
            options = {**entry["fixed"], **entry["best"], "steps": max(1, nfe // per_level)}
            runs[nfe] = test_method(task, prior, method, options, y, noise_std, truth, seed=seed, device=device)["psnr"]
        curves[label] = runs
        print(f"  {label}: " + ", ".join(f"{n}: {sum(v) / len(v):.2f}" for n, v in runs.items()), flush=True)
    return curves


def uncertainty(task: Task, prior, tuned: dict, *, k: int, n_images: int, seed: int, device="cpu") -> dict:
    """``k`` posterior samples per test image for each score method (its tuned options): the posterior mean's PSNR
    against one sample's, the coverage of 90 % prediction intervals, and the correlation of spread with error."""
    from studies.uncertainty import posterior_samples, summarize

    truth, y, noise_std = test_data(task, n_images, seed)
    out = {}
    for method in task.score_methods():
        options = {**tuned[method]["fixed"], **tuned[method]["best"]}
        samples = posterior_samples(y.to(device), task.operator, prior, method, k=k, seed=seed,
                                    noise_std=noise_std, **options).cpu()
        report = summarize(samples, truth)
        out[method] = {"psnr_mean": report.psnr_mean.tolist(), "psnr_single": report.psnr_single.tolist(),
                       "coverage": report.coverage.tolist(), "correlation": report.std_error_correlation.tolist()}
        print(f"  {method}: mean {report.psnr_mean.mean():.2f} dB vs one sample {report.psnr_single.mean():.2f}, "
              f"coverage {report.coverage.mean():.2f}", flush=True)
    return out
