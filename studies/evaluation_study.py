"""The evaluation chapter's study (``results/evaluation.json``): every protocol task's methods tuned alike on
validation images and tested on off-grid test images (:func:`run_task`), with the inverse-crime numbers beside the
honest ones, quality against network evaluations (:func:`nfe_curve`) and posterior spread (:func:`uncertainty`)."""

from __future__ import annotations

from recon.methods import METHODS
from recon.tuning import Tuned
from studies.protocol import Choice, Task, evaluate_all, measured


def run_task(task: Task, prior, tuned: dict[str, Tuned], *, n_images: int, seed: int, device="cpu",
             off_grid: bool = True) -> dict:
    """The task's test images measured (off-grid unless told otherwise) and reconstructed by the classical inverse
    and every tuned method; one row per method, in a list."""
    data = measured(task, n_images, seed, off_grid)
    choices = {task.classical: Choice(task.classical, {}, prior)}
    choices.update({m: Choice.tuned(tuned[m], prior) for m in ["tv", *task.score_methods()]})
    rows = evaluate_all(data, choices, seed=seed, device=device)
    return {**task.header(), "split": task.split, "off_grid": off_grid, "noise_std": data.measurement.noise_std,
            "rows": list(rows.values())}


def nfe_curve(task: Task, prior, tuned: dict[str, Tuned], *, nfes, n_images: int, seed: int, device="cpu") -> dict:
    """PSNR against network evaluations for every score method of the task (Euler–Maruyama; the proximal family
    also with the predictor–corrector sampler, two evaluations per level), each with the options tuned at the
    protocol's budget. Returns ``label -> {nfe: per-image PSNR}``."""
    data = measured(task, n_images, seed)
    curves = {}
    for label, entry in tuned.items():
        if label == "tv":
            continue
        choices = {nfe: Choice(entry.method, {**entry.options, **METHODS[entry.method].budget_options(nfe, entry.fixed)},
                               prior) for nfe in nfes}
        curves[label] = {nfe: row.psnr for nfe, row in evaluate_all(data, choices, seed=seed, device=device).items()}
    return curves


def uncertainty(task: Task, prior, tuned: dict[str, Tuned], *, k: int, n_images: int, seed: int, device="cpu") -> dict:
    """``k`` posterior samples per test image for each score method (its tuned options): the posterior mean's PSNR
    against one sample's, the coverage of 90 % prediction intervals, and the correlation of spread with error."""
    from studies.uncertainty import posterior_samples, summarize

    data = measured(task, n_images, seed)
    out = {}
    for method in task.score_methods():
        samples = posterior_samples(data.measurement.to(device), prior, method, k=k, seed=seed,
                                    **tuned[method].options).cpu()
        report = summarize(samples, data.truth)
        out[method] = {"psnr_mean": report.psnr_mean.tolist(), "psnr_single": report.psnr_single.tolist(),
                       "coverage": report.coverage.tolist(), "correlation": report.std_error_correlation.tolist()}
        print(f"  {method}: mean {report.psnr_mean.mean():.2f} dB vs one sample {report.psnr_single.mean():.2f}, "
              f"coverage {report.coverage.mean():.2f}", flush=True)
    return out
