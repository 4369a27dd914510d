"""The evaluation chapter's study (``results/evaluation.json``): every protocol task's methods tuned alike on
validation images and tested on off-grid test images (:func:`run_task`), with the inverse-crime numbers beside the
honest ones, quality against network evaluations (:func:`nfe_curve`) and posterior spread (:func:`uncertainty`); and
the spread that re-training the prior adds (read from the prior-seed study, :func:`seed_spread`)."""

from __future__ import annotations

import shlex
from statistics import fmean

from recon.methods import METHODS
from recon.models.checkpoints import load_card
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


# Reading the prior-seed study (studies.experiments.prior_seeds): one stored task's rows are ``{prior: {method: row}}``.


def seed_spread(entry: dict) -> dict[str, dict]:
    """Per method of one task of the prior-seed study: each prior's mean test PSNR and the spread between priors
    (highest minus lowest mean)."""
    out = {}
    for method in next(iter(entry["rows"].values())):
        means = {prior: fmean(rows[method]["psnr"]) for prior, rows in entry["rows"].items()}
        out[method] = {"means": means, "spread": max(means.values()) - min(means.values())}
    return out


def seed_differences(entry: dict, a: str, b: str) -> dict[str, float]:
    """Method ``a`` minus method ``b`` (mean over the test images, paired) with each prior of the seed study: a
    ranking that flips between priors is not one re-training keeps."""
    return {prior: fmean(x - y for x, y in zip(rows[a]["psnr"], rows[b]["psnr"]))
            for prior, rows in entry["rows"].items()}


PRIOR_SEEDS = (1, 2)  # the head-CT prior retrained with these seeds (the shipped one used seed 0)


def seed_commands(device: str | None = None, prior: str = "head_ct") -> list[tuple[str, list[str]]]:
    """``(checkpoint folder, train arguments)`` of the prior retrained with each of :data:`PRIOR_SEEDS`: the shipped
    card's command (one home for how the prior is trained) with another ``--seed`` (its training draw, initialisation
    and noise), into its own folder, checkpointing every 100 steps so that a stopped run resumes."""
    command = shlex.split(load_card(prior)["command"])
    if command[:3] != ["python", "-m", "recon.train"] or "--seed" in command:
        raise ValueError(f"the {prior} card's command {shlex.join(command)!r} is not a seed-0 `python -m recon.train` "
                         "run; retrain from its own command.")
    args, out = command[3:], []
    folder = args[args.index("--out") + 1]
    for seed in PRIOR_SEEDS:
        train = [a if a != folder else f"{folder}_seed{seed}" for a in args]
        out.append((f"{folder}_seed{seed}", [*train, "--seed", str(seed), "--checkpoint-every", "100",
                                             *(["--device", device] if device else [])]))
    return out
