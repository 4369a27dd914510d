"""Does it work on real scans? (the "priors that hold on real anatomy" issue)

Real head CT and brain MR slices of people no prior ever saw (:mod:`recon.data.real_scans`), measured off the
reconstruction grid at the shift chapter's training settings (CT 16 views, MRI 4x equispaced), noise-free and with the
protocol's physical noise. Every method is tuned alike on validation images of a data family (never on a real
scan): the shipped priors and TV on the family the shipped priors learnt, the retrained priors and TV on the richer
family they learnt. Beside them: the classical inverse, the shift chapter's supervised networks, and the posterior
spread of each prior (does it grow where the error does?). Then the same priors on the phantom test sets, to see
what the richer training costs there. This module owns the real-scan rows, their figure arrays and the phantom check;
tuning and testing are the protocol's.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from recon.operators.noise import simulate
from recon.operators.settings import make_operator
from studies import protocol
from studies.protocol import Choice
from studies.shift_study import NETWORKS, TRAINED_AT, available

# modality -> (shift-chapter data family, its setting, the classical inverse, priors: label -> (checkpoint, family))
MODALITIES = {
    "ct": {"dataset": "head_ct", "classical": "fbp", "noise": protocol.LOW_DOSE,
           "priors": {"shipped": ("head_ct", "head_ct"), "retrained": ("head_ct_hu", "head_ct_hu")}},
    "mri": {"dataset": "brain", "classical": "zero_filled", "noise": protocol.MRI_SNR,
            "priors": {"shipped": ("brain", "brain"), "retrained": ("brain_real", "brain_real"),
                       "synthetic": ("brain_synth", "brain_synth")}},
}
FIGURE_IMAGES = {"ct": ("cq500", "jxd", "cranium60"), "mri": ("mr_small", "emri4", "dipy_t1")}


def real_images(modality: str, size: int = 64, factor: int = 4):
    """``(scans, truth, fine)`` of the modality's real test slices, the fine grid ``factor`` times finer (the
    protocol's factor for the validation images too)."""
    from recon.data.real_scans import fine_and_truth_of, real_ct_scans, real_mr_scans

    scans = real_ct_scans() if modality == "ct" else real_mr_scans()
    truth, fine = fine_and_truth_of(scans, size, factor)
    return scans, truth, fine


def spread_report(samples: torch.Tensor, truth: torch.Tensor) -> dict:
    """Per image: PSNR of the posterior mean and of single samples, mean spread, 90 % coverage, corr(spread, |error|)."""
    from recon.metrics import psnr
    from studies.uncertainty import summarize

    report = summarize(samples, truth)
    return {"mean_psnr": report.psnr_mean.tolist(),
            "sample_psnr": torch.stack([psnr(s, truth) for s in samples]).mean(0).tolist(),
            "std": report.std.flatten(1).mean(1).tolist(), "coverage": report.coverage.tolist(),
            "correlation": report.std_error_correlation.tolist()}


def prior_choices(spec: dict, setting: str, operator, noise, priors: dict, *, nfe: int, n_val: int, n_trials: int,
                  seed: int, search: str = "tpe", device="cpu") -> tuple[dict[str, Choice], dict[str, dict]]:
    """Per prior of the modality, TV and the score methods tuned on its family's validation images (never on a real
    scan; ``search`` as :func:`recon.tuning.search_plan`'s): ``(label -> Choice, prior label -> {method: Tuned})``."""
    choices, tuned = {}, {}
    for label, (checkpoint, family) in spec["priors"].items():
        task = protocol.Task(setting, operator, family, noise, classical=spec["classical"])
        tuned[label] = protocol.tune_all(task, protocol.candidates(task, nfe, priors[checkpoint]), n_val=n_val,
                                         n_trials=n_trials, seed=seed, device=device, search=search)
        choices[f"TV (tuned on {family} validation)"] = Choice.tuned(tuned[label]["tv"])
        choices.update({f"{label} prior, {m}": Choice.tuned(tuned[label][m], priors[checkpoint])
                        for m in task.score_methods()})
    return choices, tuned


def spreads(data: protocol.Measured, choices: dict[str, Choice], figure: dict, *, k: int, seed: int,
            index: list[int], device="cpu") -> dict:
    """Each prior's posterior spread (``prior label -> Choice`` of its proximal method) on the real slices; the spread
    and posterior mean of the figure's slices go to ``figure``."""
    from studies.uncertainty import posterior_samples

    out = {}
    for label, choice in choices.items():
        samples = posterior_samples(data.measurement.to(device), choice.prior, choice.method, k=k, seed=seed,
                                    **choice.options).cpu()
        out[label] = {"method": choice.method, **spread_report(samples, data.truth)}
        figure[f"{label} spread"] = samples.std(0)[index, 0].numpy()
        figure[f"{label} posterior mean"] = samples.mean(0)[index, 0].numpy()
    return out


def condition(modality: str, noise, priors: dict, *, nfe: int, n_val: int, n_trials: int, spread_k: int, seed: int,
              factor: int = 4, search: str = "tpe", device="cpu") -> tuple[dict, dict]:
    """One modality under one noise model: every method on the real slices; ``(result, figure arrays)``."""
    spec = MODALITIES[modality]
    setting = TRAINED_AT[spec["dataset"]]
    operator = make_operator(setting, seed=seed)
    scans, truth, fine = real_images(modality, factor=factor)
    data = protocol.Measured(truth, simulate(operator, truth, noise, seed, fine))
    index = [[s.name for s in scans].index(n) for n in FIGURE_IMAGES[modality]]
    figure = {"truth": truth[index, 0].numpy()}
    tested, tuned = prior_choices(spec, setting, operator, noise, priors, nfe=nfe, n_val=n_val, n_trials=n_trials,
                                  seed=seed, search=search, device=device)
    choices = {spec["classical"]: Choice(spec["classical"], {}), **tested}
    choices.update({f"network ({kind}, {spec['dataset']})": Choice("supervised", {"network": name})
                    for kind, name in NETWORKS[spec["dataset"]].items() if available(name)})
    rows = protocol.evaluate_all(data, choices, seed=seed, device=device,  # scored unclamped, as the phantom rows
                                 keep=lambda label, x: figure.__setitem__(label, x[index, 0].numpy()))
    method = protocol.Task(setting, operator, spec["dataset"], noise).score_methods()[0]
    proximal = {label: tested[f"{label} prior, {method}"] for label in spec["priors"]}
    spread = spreads(data, proximal, figure, k=spread_k, seed=seed, index=index, device=device)
    result = {"setting": setting, "noise": "noise-free" if noise is None else noise.describe(),
              "noise_std": data.measurement.noise_std, "images": [s.name for s in scans],
              "subjects": [s.subject for s in scans], "sources": [s.source for s in scans],
              "upsampled": [s.upsampled for s in scans],
              "rows": {k: dataclasses.replace(r, residual=None) for k, r in rows.items()},  # the file keeps no residual
              "tuned": tuned, "spread": spread,
              "priors": {label: {"checkpoint": c, "family": f} for label, (c, f) in spec["priors"].items()}}
    return result, {k: v.astype(np.float16) for k, v in figure.items()}


def phantom_check(modality: str, noise, priors: dict, tuned: dict, *, nfe: int, n_images: int, n_val: int,
                  n_trials: int, seed: int, search: str = "tpe", device="cpu") -> dict:
    """Both priors on the shipped family's phantom test set at the same setting, each with its proximal step tuned on
    that family's validation images (the shipped prior's tuning is reused from the real-scan run)."""
    spec = MODALITIES[modality]
    setting = TRAINED_AT[spec["dataset"]]
    task = protocol.Task(setting, make_operator(setting, seed=seed), spec["dataset"], noise, classical=spec["classical"])
    method = task.score_methods()[0]
    choices = {}
    for label, (checkpoint, family) in spec["priors"].items():
        prior = priors[checkpoint]
        if family == spec["dataset"]:
            choices[f"{label} prior, {method}"] = Choice.tuned(tuned[label][method], prior)
            continue
        candidate = {method: Choice(method, protocol.budget_options(method, nfe), prior)}
        here = protocol.tune_all(task, candidate, n_val=n_val, n_trials=n_trials, seed=seed, device=device,
                                 search=search)[method]
        choices[f"{label} prior, {method}"] = Choice.tuned(here, prior)
    rows = protocol.evaluate_all(protocol.measured(task, n_images, seed), choices, seed=seed, device=device)
    return {"setting": setting, "dataset": spec["dataset"], "noise": task.noise_name, "rows": rows}


def real_scan_study(*, nfe: int = 30, n_val: int = 8, n_trials: int = 10, spread_k: int = 8, n_phantoms: int = 32,
                    modalities=("ct", "mri"), factor: int = 4, seed: int = 0, search: str = "tpe",
                    device="cpu") -> tuple[dict, dict]:
    """The whole study: ``(results, figure arrays keyed "modality|noise-free or noisy|row")``."""
    out, arrays = {}, {}
    for modality in modalities:
        spec = MODALITIES[modality]
        priors = protocol.load_priors(device, [checkpoint for checkpoint, _ in spec["priors"].values()])
        out[modality] = []
        for noise in (None, spec["noise"]):
            print(modality, "noise-free" if noise is None else noise.describe(), flush=True)
            start = time.perf_counter()
            result, figure = condition(modality, noise, priors, nfe=nfe, n_val=n_val, n_trials=n_trials,
                                       spread_k=spread_k, seed=seed, factor=factor, search=search, device=device)
            result["phantoms"] = phantom_check(modality, noise, priors, result["tuned"], nfe=nfe, n_images=n_phantoms,
                                               n_val=n_val, n_trials=n_trials, seed=seed, search=search,
                                               device=device)
            result["seconds"] = round(time.perf_counter() - start)
            out[modality].append(result)
            tag = "noise-free" if noise is None else "noisy"
            arrays.update({f"{modality}|{tag}|{k}": v for k, v in figure.items()})
    return out, arrays
