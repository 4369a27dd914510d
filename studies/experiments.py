"""The book's heavy experiments, each a function of typed keyword options that returns a JSON-ready dict.

``scripts/make_results.py NAME`` runs one through :func:`run_experiment` (which records every option used) and
writes ``results/NAME.json`` with its provenance; the notebooks read the file and repeat a small part live
(:func:`studies.results.spot_check`). All of them follow :mod:`studies.protocol`, whose pipeline keeps rows and tuned
values typed until :func:`run_experiment` turns the result into JSON (:func:`studies.results.to_json`). This module
owns the experiments' registry, their options and the loops over settings.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import scipy.ndimage as ndi
import torch

import recon
from recon.data.offgrid import fine_and_truth
from recon.files import atomic_write
from recon.methods import METHODS
from recon.provenance import code_version, provenance
from studies import evaluation_study, protocol
from studies.ablation import lambda_sweep
from studies.path_study import PATH_VARIANTS, run_rows, tune_baselines
from studies.protocol import Choice, load_priors
from studies.realism import denoising_residual
from studies.results import Brief, load_results, reused_part, to_json, tuned_from_json, write_partial

EXPERIMENTS: dict[str, Callable[..., dict]] = {}


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
    return {"options": used, **to_json(function(**bound.arguments))}


def each_setting(result: dict, key: str, settings: Iterable, run: Callable[[object], dict],
                 out: str | None = None, *, resume: dict | None = None) -> dict:
    """``result[key]`` extended by ``run(setting)`` for every setting; with ``out``, the partial result is written
    there after each (a long run that is cut short keeps what it finished). With ``resume`` (the run's options), a
    partial file that the same options and inputs wrote is continued: its first entries are kept, in order."""
    done = _resumable(out, result, key, resume) if resume is not None else []
    for i, setting in enumerate(settings):
        if i < len(done):
            print(f"setting {i + 1} (stored in {out})", flush=True)
        result[key].append(done[i] if i < len(done) else run(setting))
        write_partial(out, result if resume is None else {**result, "resumed_options": resume})
    return result


def _resumable(out: str | None, result: dict, key: str, options: dict) -> list:
    """The entries under ``key`` of the partial file ``out`` when it was written with these ``options`` and the same
    inputs (every other key of ``result``); else none, and a word that the run starts afresh."""
    if not out or not Path(out).exists():
        return []
    partial = json.loads(Path(out).read_text())
    mine = to_json({**{k: v for k, v in result.items() if k != key}, "resumed_options": options})
    if {k: v for k, v in partial.items() if k != key} != mine:
        print(f"{out} holds another run (other options or inputs): starting afresh.", flush=True)
        return []
    return partial[key]


def lambda_tasks(seed: int = 0) -> dict[str, protocol.Task]:
    """The lam chapter's settings, as protocol tasks: CT 16 views and MRI 8x, each noise-free and noisy."""
    wanted = {("CT, 16 views", "test"), ("MRI, 8x", "test")}
    return {task.key: task for task in protocol.tasks(seed=seed) if (task.name, task.split) in wanted}


@experiment
def lambda_sweeps(*, lam_grid=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0), n_images: int = 32, steps: int = 30,
                  realism_sigma: float = 0.05, seed: int = 0) -> dict:
    """PSNR, SSIM, data residual and realism against lam on off-grid test images, per task (Euler–Maruyama, ``steps``
    network evaluations, no final projection). The best lam of this grid is chosen on test images: an oracle."""
    priors = load_priors()
    sweeps = {}
    for key, task in lambda_tasks(seed).items():
        truth, fine = fine_and_truth(task.dataset, n_images, 64, task.split, seed)
        prior = priors[task.dataset]
        sweep = lambda_sweep(task.operator, truth, prior, lam_grid, noise=task.noise, fine=fine, steps=steps,
                             seed=seed, realism_sigma=realism_sigma)
        reference = denoising_residual(prior, truth, sigma=realism_sigma, generator=torch.Generator().manual_seed(seed))
        sweeps[key] = {"name": task.name, "noise": task.noise_name, "psnr": sweep.psnr.tolist(),
                       "ssim": sweep.ssim.tolist(), "residual": sweep.residual.tolist(),
                       "realism": sweep.realism.tolist(), "truth_realism": reference.tolist(),
                       "noise_std": sweep.noise_std, "seconds": sweep.seconds}
        print(key, [round(float(v), 2) for v in sweep.psnr.mean(1)], flush=True)
    return {"sweeps": sweeps}


@experiment
def lambda_study(*, n_trials: int = 24, n_val: int = 8, n_images: int = 32, levels: int = 15, seed: int = 0,
                 search: str = "tpe") -> dict:
    """optuna's TPE (or, with ``search="protocol"``, the protocol's 7 x 7 grid) over (lam, snr) of the proximal step
    with the predictor–corrector sampler (``levels`` levels, two network evaluations each), per task, on validation
    images, each study with its own seed; the tuned point's PSNR on the test images is reported, never used to
    choose."""
    priors = load_priors()
    studies = {}
    for key, task in lambda_tasks(seed).items():
        prior, method = priors[task.dataset], task.score_methods()[0]
        choice = {method: Choice(method, {"steps": levels, "sampler": "pc"}, prior)}
        tuned = protocol.tune_all(task, choice, n_val=n_val, n_trials=n_trials, seed=seed, search=search,
                                  name=lambda _, key=key: f"lambda|{key}")[method]
        row = protocol.reconstruct_row(protocol.measured(task, n_images, seed), Choice.tuned(tuned, prior), seed=seed)[1]
        studies[key] = {"name": task.name, "noise": task.noise_name, "method": method, "best": tuned.best,
                        "best_value": tuned.value, "at_bound": tuned.at_bound, "seed": tuned.seed,
                        "trials": tuned.trials, "test_psnr": row.psnr}
    return {"studies": studies}


def perturbations(images: torch.Tensor, operator, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Mild and strong versions of three departures from a true image: noise, blur, and the artefacts of the
    pseudo-inverse at the task's undersampling."""
    def blur(s):
        return torch.from_numpy(ndi.gaussian_filter(images.numpy(), (0, 0, s, s))).float()

    noise = torch.randn(images.shape, generator=generator)
    artefact = operator.A_pinv(operator.A(images)).float() - images
    return {"truth": images, "noise, mild": images + 0.01 * noise, "noise, strong": images + 0.03 * noise,
            "blur, mild": blur(0.5), "blur, strong": blur(1.0), "undersampling artefacts, mild": images + 0.5 * artefact,
            "undersampling artefacts, strong": images + artefact}


@experiment
def realism_validation(*, n_images: int = 32, sigmas=(0.02, 0.05), seed: int = 0) -> dict:
    """Does the realism measure (the prior's denoising residual) rank the truth below mildly and strongly perturbed
    versions of it? Per prior, per perturbation, per noise level of the measure."""
    out = {}
    for task in lambda_tasks(seed).values():
        if task.noise is not None:
            continue
        prior = recon.load_prior(task.dataset)
        truth, _ = fine_and_truth(task.dataset, n_images, 64, "test", seed)
        versions = perturbations(truth, task.operator, torch.Generator().manual_seed(seed))
        out[task.dataset] = {f"{sigma:g}": {name: denoising_residual(prior, x, sigma=sigma, generator=torch.Generator()
                                                                     .manual_seed(seed)).tolist()
                                            for name, x in versions.items()} for sigma in sigmas}
        print(task.dataset, {s: {k: round(sum(v) / len(v), 4) for k, v in d.items()} for s, d in out[task.dataset].items()})
    return {"realism": out}


@experiment
def evaluation(*, n_images: int = 32, n_val: int = 8, n_trials: int = 10, nfe: int = 60, curve_nfes=(10, 30, 60, 100,
               300), curve_images: int = 8, k: int = 8, seed: int = 0, device: str = "cpu", only: str | None = None,
               reuse: str = "results/evaluation.json", tasks=None, tuned_from: str | None = None,
               search: str = "tpe") -> dict:
    """The evaluation protocol (studies.protocol) on every task: methods tuned alike on validation images
    at ``nfe`` network evaluations, tested on ``n_images`` off-grid test images; the inverse-crime numbers of one task
    beside its honest ones; quality against NFE and posterior spread on two tasks. Each task runs with its family's
    prior of :data:`studies.protocol.PRIORS`. ``only`` (a data family) or ``tasks`` (task keys): run those tasks and
    keep the others' entries from ``reuse`` (the result says which, with that run's provenance). ``tuned_from`` (the
    tuning study's file, :func:`tuning`): every method it swept on a task's setting takes the sweep's value
    (:func:`studies.tuning_study.tuned_of`) instead of the search; ``search`` is :func:`recon.tuning.search_plan`'s
    for the rest ("tpe" with ``n_trials``, or "protocol": a grid for one or two parameters)."""
    priors = protocol.protocol_priors(device)
    curve_tasks = {"CT, 16 views|" + protocol.LOW_DOSE.describe(), "MRI, 8x|noise-free"}
    family = {task.key: task.dataset for task in protocol.tasks(seed=seed)}
    if tasks is not None and not set(tasks) <= set(family):
        raise ValueError(f"unknown tasks {sorted(set(tasks) - set(family))}; choose protocol task keys.")
    runs = {key for key in family if (only is None or family[key] == only) and (tasks is None or key in tasks)}
    kept, record = reused_part(reuse, lambda e: e["task"] not in runs, lambda r: r["tasks"]) if runs != set(family) \
        else ([], None)
    kept = {e["task"]: {"dataset": family[e["task"]], "prior": protocol.PRIORS[family[e["task"]]], **e} for e in kept}
    swept = _swept(tuned_from, nfe=nfe, seed=seed) if tuned_from else {}
    tuned_by_setting, results = {}, []
    for task in protocol.tasks(seed=seed):
        if task.key not in runs:
            results.append(kept[task.key])
            continue
        print(task.key, flush=True)
        setting, prior = f"{task.name}|{task.noise_name}", priors[task.dataset]
        if setting not in tuned_by_setting:  # the anatomy-shift task shares its setting's validation tuning
            choices = protocol.candidates(task, nfe, prior, with_pc=setting in curve_tasks)
            fresh = protocol.tune_all(task, {label: c for label, c in choices.items() if (setting, label) not in swept},
                                      n_val=n_val, n_trials=n_trials, seed=seed, device=device, search=search)
            tuned_by_setting[setting] = {label: swept.get((setting, label)) or fresh[label] for label in choices}
        tuned, run = tuned_by_setting[setting], {"n_images": n_images, "seed": seed, "device": device}
        entry = evaluation_study.run_task(task, prior, tuned, **run)
        if task.key == "CT, 16 views|noise-free|test":
            entry["inverse_crime"] = evaluation_study.run_task(task, prior, tuned, **run, off_grid=False)["rows"]
        if setting in curve_tasks and task.split == "test":
            curve = {"n_images": curve_images, "seed": seed, "device": device}
            entry["nfe_curve"] = evaluation_study.nfe_curve(task, prior, tuned, nfes=curve_nfes, **curve)
            entry["uncertainty"] = evaluation_study.uncertainty(task, prior, tuned, k=k, **curve)
        results.append({**entry, "dataset": task.dataset, "prior": protocol.PRIORS[task.dataset], "tuned": tuned})
    return {"tasks": results, **({"reused": record} if record else {})}


def _swept(path: str, *, nfe: int, seed: int) -> dict:
    """``(setting, label) -> Tuned`` of every finished sweep of the tuning study at ``path`` (a setting: task name and
    noise, as the evaluation shares a setting's tuning between its test splits), refused when the study ran at another
    budget or seed."""
    from studies.tuning_study import load_sweeps, tuned_of

    stored = load_sweeps(path)
    if (stored["settings"]["nfe"], stored["settings"]["seed"]) != (nfe, seed):
        raise ValueError(f"{path} swept at {stored['settings']['nfe']} NFE with seed {stored['settings']['seed']}, "
                         f"this run is at {nfe} NFE with seed {seed}; pass the tuning study run with the same options.")
    return {(f"{e['name']}|{e['noise']}", e["label"]): tuned_of(e, seed) for e in stored["sweeps"]
            if e["split"] == "test"}


def path_tasks(seed: int = 0) -> dict[str, protocol.Task]:
    """The path-guided chapter's settings: CT 8 and 16 views, MRI 4x and 8x, noise-free and noisy (in-distribution
    test images), and CT 23 views for the transfer test."""
    out = {t.key: t for t in protocol.tasks(seed=seed) if t.split == "test"}
    ct23 = recon.ParallelBeamCT(64, 23)
    for noise in (None, protocol.LOW_DOSE):
        task = protocol.Task("CT, 23 views", ct23, "head_ct", noise)
        out[task.key] = task
    return out


TRANSFER = {"CT, 16 views": ("CT, 8 views", "CT, 23 views"), "MRI, 8x": ("MRI, 4x",)}


@experiment
def path_guided(*, budgets=(100, 500), large_budget_tasks=("CT, 16 views|noise-free|test", "MRI, 8x|noise-free|test"),
                n_images: int = 32, n_val: int = 8, n_trials: int = 10, seed: int = 0, device: str = "cpu",
                out: str | None = None) -> dict:
    """The path-guided head-to-head (studies.path_study) at the first budget of network evaluations per
    image on every setting, and at the larger budgets on ``large_budget_tasks``, the baselines tuned per setting and
    budget on validation images (the transfer test is :func:`path_transfer`). With ``out``, the partial result is
    written there after every setting (a long run that is cut short keeps what it finished)."""
    priors = load_priors(device)
    settings = [(task, budget) for budget in budgets for key, task in path_tasks(seed).items()
                if task.name != "CT, 23 views" and (budget == budgets[0] or key in large_budget_tasks)]

    def run(setting):
        task, budget = setting
        print(task.key, budget, flush=True)
        prior = priors[task.dataset]
        tuned = tune_baselines(task, prior, budget, n_val=n_val, n_trials=n_trials, seed=seed, device=device)
        return {**run_rows(task, prior, tuned, budget, n_images=n_images, seed=seed, device=device), "tuned": tuned}

    return each_setting({"head_to_head": []}, "head_to_head", settings, run, out)


@experiment
def path_transfer(*, head_to_head: str = "results/path_guided.json", budget: int = 100, n_images: int = 32,
                  seed: int = 0, device: str = "cpu") -> dict:
    """The transfer test: λ and snr (PC) and DPS's ζ, as tuned at CT 16 views and MRI 8x in ``head_to_head``'s file,
    applied unchanged at CT 8 / 23 views and MRI 4x (same noise model). Where the target is also in the head-to-head
    (CT 8, MRI 4x) only the transferred baselines run (the untuned rows are the head-to-head's); at CT 23 views
    λ = 1 and the two default path steps run beside them."""
    from studies.results import load_results

    stored = load_results(head_to_head)["results"]
    tuned = {(e["task"], e["budget"]): {label: Brief(tuned_from_json(t)) for label, t in e["tuned"].items()}
             for e in stored["head_to_head"]}
    native = {e["task"] for e in stored["head_to_head"] if e["budget"] == budget}
    priors = load_priors(device)
    rows = []
    for key, task in path_tasks(seed).items():
        source = next((s for s, targets in TRANSFER.items() if task.name in targets), None)
        if source is None:
            continue
        source_key = f"{source}|{task.noise_name}|test"
        only = tuple(tuned[source_key, budget]) + (() if key in native else ("λ = 1", "path (filter)", "path (grid)"))
        print(f"{key} with the values tuned at {source_key}: {only}", flush=True)
        entry = run_rows(task, priors[task.dataset], tuned[source_key, budget], budget, n_images=n_images,
                         seed=seed, device=device, only=only)
        rows.append({**entry, "source": source_key, "tuned": tuned[source_key, budget]})
    return {"transfer": rows}


@experiment
def path_nfe(*, nfes=(30, 100, 300), n_images: int = 8, seed: int = 0, device: str = "cpu") -> dict:
    """PSNR against network evaluations per image for Song et al.'s step at λ = 1 and the two default path steps
    (their levels are the budget divided by their evaluations per level), CT 16 views and MRI 8x without noise, on
    the first ``n_images`` off-grid test images: what the path steps would need to catch up."""
    priors = load_priors(device)
    all_tasks = path_tasks(seed)
    curves = {}
    for key in ("CT, 16 views|noise-free|test", "MRI, 8x|noise-free|test"):
        task, prior = all_tasks[key], priors[all_tasks[key].dataset]
        data = protocol.measured(task, n_images, seed)
        runs = {"λ = 1": ("proximal", {})}
        runs.update({label: ("path", options) for label, options in PATH_VARIANTS.items() if "lanes" not in label})
        curves[key] = {}
        for label, (method, options) in runs.items():
            print(key, label, flush=True)
            choices = {nfe: Choice(method, {**options, **METHODS[method].budget_options(nfe, options)}, prior)
                       for nfe in nfes}
            rows = protocol.evaluate_all(data, choices, seed=seed, device=device)
            curves[key][label] = {nfe: {"psnr": r.psnr, "nfe": r.nfe, "seconds_per_image": r.seconds_per_image}
                                  for nfe, r in rows.items()}
    return {"curves": curves}


def consistency_priors(cms: dict[str, str], device) -> dict:
    """Per data family, the diffusion prior and the consistency model named in ``cms``."""
    diffusion, cm = load_priors(device), load_priors(device, [cms[name] for name in protocol.FAMILIES])
    return {name: {"diffusion": diffusion[name], "cm": cm[cms[name]]} for name in protocol.FAMILIES}


@experiment
def consistency(*, n_images: int = 32, n_val: int = 8, n_trials: int = 10, realism_samples: int = 32, seed: int = 0,
                head_ct_cm: str = "head_ct_cm", brain_cm: str = "brain_cm", device: str = "cpu",
                only: list | None = None, out: str | None = None) -> dict:
    """The consistency head-to-head (studies.consistency_study) on CT 8 / 16 views and MRI 4x / 8x, each
    noise-free and noisy, every row tuned on validation images at its own budget; and the realism of unconditional
    samples. ``only``: the task keys to run (a run cut short finishes with the rest; its realism part is then
    skipped). With ``out``, the partial result is written there after every setting."""
    from studies.consistency_study import unconditional_realism

    cms = {"head_ct": head_ct_cm, "brain": brain_cm}
    priors = consistency_priors(cms, device)
    result = {"cm_cards": {name: recon.models.load_card(path) for name, path in cms.items()},
              "realism": {}, "head_to_head": []}
    for name in ("head_ct", "brain") if only is None else ():
        result["realism"][name] = unconditional_realism(name, priors[name], n=realism_samples, seed=seed,
                                                        device=device)
        print(name, {k: round(sum(v) / len(v), 4) for k, v in result["realism"][name].items()}, flush=True)
    settings = [t for t in protocol.tasks(seed=seed) if t.split == "test" and (only is None or t.key in only)]
    run = {"n_val": n_val, "n_trials": n_trials, "n_images": n_images, "seed": seed, "device": device}
    return each_setting(result, "head_to_head", settings, lambda task: consistency_setting(task, priors, **run), out)


def consistency_setting(task: protocol.Task, priors: dict, *, n_val: int, n_trials: int, n_images: int, seed: int,
                        device="cpu", labels: list | None = None) -> dict:
    """One setting of the consistency head-to-head: its rows (or those in ``labels``) tuned, then tested."""
    from studies.consistency_study import test_rows, tune_rows

    print(task.key, flush=True)
    tuned = tune_rows(task, priors[task.dataset], n_val=n_val, n_trials=n_trials, seed=seed, device=device,
                      labels=labels)
    return {**test_rows(task, priors[task.dataset], tuned, n_images=n_images, seed=seed, device=device),
            "tuned": tuned}


@experiment
def consistency_rows(*, labels=(), only=(), n_images: int = 32, n_val: int = 8, n_trials: int = 10, seed: int = 0,
                     device: str = "cpu") -> dict:
    """Rows of the consistency head-to-head added after its run (``labels``, on the task keys in ``only``), tuned and
    tested exactly as there; the notebook merges them into ``results/consistency.json``'s settings."""
    priors = consistency_priors({name: name + "_cm" for name in protocol.FAMILIES}, device)
    run = {"n_val": n_val, "n_trials": n_trials, "n_images": n_images, "seed": seed, "device": device}
    return {"head_to_head": [consistency_setting(task, priors, **run, labels=list(labels))
                             for task in protocol.tasks(seed=seed) if task.split == "test" and task.key in only]}


@experiment
def consistency_timing(*, batch: int = 32, nfes=(1, 2, 4, 8), repeats: int = 3, seed: int = 0) -> dict:
    """Seconds per image on this machine's CPU for the consistency model with the proximal step (a batch of
    ``batch`` off-grid test images, best of ``repeats``), CT 16 views and MRI 8x, beside the diffusion prior's
    proximal step at 60 evaluations."""
    from recon.models.precision import describe

    timings = {}
    for key in ("CT, 16 views|noise-free|test", "MRI, 8x|noise-free|test"):
        task = path_tasks(seed)[key]
        measurement = protocol.measured(task, batch, seed).measurement
        cm, prior = recon.load_prior(task.dataset + "_cm"), recon.load_prior(task.dataset)
        runs = {f"CM + proximal step, {n} NFE": (cm, "consistency", {"steps": n}) for n in nfes}
        runs["diffusion + proximal step, 60 NFE"] = (prior, "proximal", {"steps": 60})
        timings[key] = {}
        for label, (model, method, options) in runs.items():
            seconds = [recon.reconstruct(measurement, prior=model, method=method, seed=seed, **options)[1].seconds
                       for _ in range(repeats)]
            timings[key][label] = min(seconds) / batch
        print(key, {k: round(v, 4) for k, v in timings[key].items()}, flush=True)
    return {"seconds_per_image": timings, "batch": batch, "cpu": describe("cpu")}


@experiment
def shift(*, nfe: int = 30, n_images: int = 32, n_val: int = 8, n_trials: int = 10, spread_k: int = 8,
          spread_images: int = 6, seed: int = 0, device: str = "cpu", out: str | None = None, only: str | None = None,
          reuse: str = "results/shift.json", search: str = "tpe") -> dict:
    """The operator-shift grid of the shift chapter (studies.shift_study): at every point the prior with λ
    carried over from the training setting and tuned there (``nfe`` Euler–Maruyama levels), its posterior spread, and
    the supervised networks; then the anatomy panel. Each family's prior is that of :data:`studies.protocol.PRIORS`.
    With ``out``, the prior's points are written there after each one and a rerun with the same options continues
    from them (the networks' rows are always recomputed: they are cheap). ``only`` (a data family): run that family's
    points and keep the others' from ``reuse`` (the result says which, with that run's provenance). ``search`` tunes λ
    (:func:`recon.tuning.search_plan`'s: "tpe" with ``n_trials``, or "protocol": its 13-point grid)."""
    from studies.shift_study import anatomy_panel, network_rows, prior_point, shift_grid, source_task

    options = {"nfe": nfe, "n_images": n_images, "n_val": n_val, "n_trials": n_trials, "spread_k": spread_k,
               "spread_images": spread_images, "seed": seed, **({"search": search} if search != "tpe" else {})}
    partial = json.loads(Path(out).read_text()) if out and Path(out).exists() else {}
    done = {(p["setting"], p["noise"]): p for p in partial.get("points", [])} if partial.get("options") == options else {}
    carried = {key: tuned_from_json(t) for key, t in partial.get("carried", {}).items()} if done else {}
    kept, record = reused_part(reuse, lambda p: p["dataset"] != only, lambda r: r["points"]) if only else ([], None)
    done.update({(p["setting"], p["noise"]): p for p in kept})
    priors = protocol.protocol_priors(device)
    carried.update({source_task(s, seed).key: tuned_from_json(p["tuned"]["carried"]) for s in shift_grid()
                    for p in kept if (p["setting"], p["noise"]) == (s.setting, s.task(seed).noise_name)})
    points = []
    for point in shift_grid():
        source = source_task(point, seed)
        if source.key not in carried:
            carried[source.key] = shift_tune(source, priors[point.dataset], options, device)
        key = (point.setting, point.task(seed).noise_name)
        print(point.setting, point.axis, point.value, "(stored)" if key in done else "", flush=True)
        points.append(done.get(key) or prior_point(point, priors[point.dataset], carried[source.key], nfe=nfe,
                                                   n_images=n_images, n_val=n_val, n_trials=n_trials, seed=seed,
                                                   spread_k=spread_k, spread_images=spread_images, device=device,
                                                   search=search))
        write_partial(out, {"options": options, "carried": carried, "points": points})
    for point, result in zip(shift_grid(), points):
        if only and point.dataset != only:
            continue
        print(f"  {point.setting} {result['noise']}: the networks", flush=True)
        result["rows"] = {k: v for k, v in result["rows"].items() if not k.startswith("network")}
        result["rows"].update(network_rows(point, n_images=n_images, seed=seed, device=device))
    from_training = {point.dataset: carried[source_task(point, seed).key].options
                     for point in shift_grid() if point.noise is None}
    return {"points": points, "anatomy": anatomy_panel(priors, from_training, seed=seed, device=device),
            "priors": dict(protocol.PRIORS), **({"reused": record} if record else {})}


@experiment
def shift_truncation(*, settings=("ct:16", "ct:25", "ct:32", "ct:60", "ct:90"), nfe: int = 30, n_images: int = 32,
                     n_val: int = 8, n_trials: int = 10, seed: int = 0, device: str = "cpu") -> dict:
    """The shift chapter's follow-up at the many-view CT points, where the proximal step's exact pseudo-inverse
    amplifies what the operator cannot explain (the off-grid data): the prior with the step's pseudo-inverse
    truncated, the cut-off tuned with λ on validation images at 16 views (carried over) and at each point."""
    from studies.shift_study import Shift, tune_truncated

    prior = load_priors(device, ["head_ct"])["head_ct"]
    tune = {"nfe": nfe, "n_val": n_val, "n_trials": n_trials, "seed": seed, "device": device}
    carried = tune_truncated(Shift(settings[0], "head_ct", "views", 0).task(seed), prior, **tune)
    points = []
    for setting in settings:
        task = Shift(setting, "head_ct", "views", 0).task(seed)
        here = carried if setting == settings[0] else tune_truncated(task, prior, **tune)
        runs = {"prior, truncated A⁺, carried over": Choice.tuned(carried, prior),
                "prior, truncated A⁺, tuned here": Choice.tuned(here, prior)}
        print(setting, flush=True)
        rows = protocol.evaluate_all(protocol.measured(task, n_images, seed), runs, seed=seed, device=device)
        points.append({"setting": setting, "rows": rows, "tuned": {"carried": carried, "here": here}})
    return {"points": points}


def shift_tune(source, prior, options: dict, device) -> dict:
    """λ tuned at a training setting, to be carried over to the shifted points."""
    from studies.shift_study import tune_lambda

    return tune_lambda(source, prior, nfe=options["nfe"], n_val=options["n_val"], n_trials=options["n_trials"],
                       seed=options["seed"], device=device, search=options.get("search", "tpe"))


@experiment
def synthetic_dp(*, n_synthetic: int = 1024, n_private: int = 2048, n_test: int = 1024, steps: int = 18,
                 mia_images: int = 1024, nfe: int = 30, n_images: int = 32, n_val: int = 8, n_trials: int = 10,
                 seed: int = 0, device: str = "cpu") -> dict:
    """The synthetic-data chapter (studies.synthetic_study): for the public-only prior, the privately
    fine-tuned priors at each ε, the from-scratch private prior and the non-private one: synthetic data's utility and
    fidelity, memorisation and membership inference on the private training images, and reconstruction at CT 16
    views; plus the classifier trained on the real private images, the reference of every comparison."""
    from recon.models.checkpoints import load_card
    from studies import synthetic_study as st

    sets = st.private_sets(n_private, n_test, seed)
    real, summary = st.real_reference(sets, n_synthetic, seed=seed)
    out = {"real": summary, "labels": sets["test"][1].tolist(), "models": {}}
    for name in st.DP_MODELS.values():
        st.check_members(name, n_private, seed)
    for label, name in st.DP_MODELS.items():
        prior = recon.load_prior(name, device)
        images, labels = st.synthetic_set(prior, n_synthetic, steps=steps, seed=seed + st.SAMPLE_SEED)
        members, nonmembers = ((sets[k][0][:mia_images], sets[k][1][:mia_images]) for k in ("train", "val"))
        result = {"checkpoint": name, "privacy": load_card(name).get("privacy"),
                  **st.utility_and_fidelity(images, labels, sets, real, seed=seed),
                  "memorisation": st.memorisation(images, sets["train"][0], sets["val"][0]),
                  "membership": st.membership_audit(prior, members, nonmembers, seed=seed),
                  "reconstruction": st.reconstruction(prior, nfe=nfe, n_images=n_images, n_val=n_val,
                                                      n_trials=n_trials, seed=seed, device=device)}
        print(f"  {label}: AUC {result['classifier']['auc']:.3f}, FD {result['fd']:.2f}, MIA "
              f"{result['membership']['auc']:.3f}, PSNR {sum(result['reconstruction']['row'].psnr) / n_images:.2f}",
              flush=True)
        out["models"][label] = result
    return out


@experiment
def synthetic_cfg(*, prior: str = "head_ct_private_long", guidances=(0.0, 1.0, 3.0), steps=(18,),
                  n_synthetic: int = 1024, n_private: int = 2048, n_test: int = 1024, show: int = 8, seed: int = 0,
                  device: str = "cpu", out: str | None = None,
                  samples: str = "results/synthetic_cfg_samples.npz") -> dict:
    """The non-private ceiling of the synthetic-data chapter: does class-conditional synthesis carry its label? For
    the privately fine-tuned prior without DP, at each classifier-free guidance weight w (Ho & Salimans 2022) and
    sampler length: the share of each class's synthetic images the real-data classifier calls haemorrhage, and
    train-on-synthetic, test-on-real utility and fidelity as in :func:`synthetic_dp`. ``show`` samples per label and
    setting go to ``samples`` (float16; its SHA-256 in the result). With ``out``, the partial result is written after
    every setting."""
    import itertools

    from studies import synthetic_study as st

    st.check_members(prior, n_private, seed)
    sets = st.private_sets(n_private, n_test, seed)
    real, summary = st.real_reference(sets, n_synthetic, seed=seed)
    model = recon.load_prior(prior, device)
    arrays = {}

    def run(setting):
        result, images = st.guided_run(model, *setting, n_synthetic=n_synthetic, sets=sets, real=real, seed=seed)
        arrays.update({f"w{setting[0]:g}|steps{setting[1]}|class{c}": a for c, a in st.shown(images, show).items()})
        return result

    result = {"prior": prior, "card": st.card_summary(prior), "real": summary, "runs": []}
    each_setting(result, "runs", itertools.product(guidances, steps), run, out)
    return {**result, "samples": save_samples(arrays, samples)}


def save_samples(arrays: dict, path: str) -> dict:
    """Write ``arrays`` to the compressed ``.npz`` at ``path`` atomically; return its path, SHA-256 and keys."""
    import hashlib
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda target: target.write_bytes(buffer.getvalue()))
    return {"path": path, "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(), "keys": sorted(arrays)}


@experiment
def synthetic_dp_long(*, priors=("head_ct_dp_eps10_long",), guidances=(0.0, 1.0, 3.0), steps: int = 18,
                      n_synthetic: int = 1024, n_private: int = 2048, n_test: int = 1024, mia_images: int = 1024,
                      show: int = 8, seed: int = 0, device: str = "cpu", out: str | None = None,
                      samples: str = "results/synthetic_dp_long_samples.npz") -> dict:
    """DP-SGD at the non-private ceiling's budget (:func:`synthetic_cfg`: 1,000 fine-tuning steps): for each private
    prior, its privacy card, label fidelity and train-on-synthetic utility at each guidance weight (as
    :func:`synthetic_cfg`), and the audits of :func:`synthetic_dp` (nearest neighbours on the unguided synthetic set,
    the membership attack on ``mia_images`` members and as many non-members); ``show`` images per class, weight and
    prior go to ``samples``. With ``out``, the partial result is written after every prior."""
    from recon.models.checkpoints import load_card
    from studies import synthetic_study as st

    for name in priors:
        st.check_members(name, n_private, seed)
    sets = st.private_sets(n_private, n_test, seed)
    real, summary = st.real_reference(sets, n_synthetic, seed=seed)

    def run(name):
        model = recon.load_prior(name, device)
        runs, unguided = [], None
        for w in guidances:
            result, images = st.guided_run(model, w, steps, n_synthetic=n_synthetic, sets=sets, real=real, seed=seed)
            runs.append(result)
            unguided = images if w == 0 else unguided
            arrays.update({f"{name}|w{w:g}|class{c}": a for c, a in st.shown(images, show).items()})
        members, nonmembers = ((sets[k][0][:mia_images], sets[k][1][:mia_images]) for k in ("train", "val"))
        audits = {"membership": st.membership_audit(model, members, nonmembers, seed=seed)}
        if unguided is not None:
            audits["memorisation"] = st.memorisation(unguided, sets["train"][0], sets["val"][0])
        return {"prior": name, "privacy": load_card(name).get("privacy"), "card": st.card_summary(name), "runs": runs,
                **audits}

    arrays = {}
    result = each_setting({"real": summary, "models": []}, "models", priors, run, out)
    return {**result, "samples": save_samples(arrays, samples)}


@experiment
def synthetic_audit_control(*, prior: str = "head_ct_private_memorised", n_members: int = 32,
                            n_nonmembers: int = 1024, n_synthetic: int = 256, steps: int = 18, seed: int = 0,
                            device: str = "cpu") -> dict:
    """The audits' positive control: a prior fine-tuned for many passes over ``n_members`` private images, which
    should memorise them. The membership attack of :func:`synthetic_dp` on its members against ``n_nonmembers``
    held-out images (TPR at 1 % and 0.1 % false positives), and the nearest-neighbour audit of ``n_synthetic``
    synthetic images (half of each class) against the members and as many held-out images. An audit that does not
    flag this prior has no power on the private ones."""
    from recon.data.hospital import private_heads
    from studies import synthetic_study as st

    st.check_members(prior, n_members, seed)
    members = private_heads(n_members, 64, "train", seed)
    nonmembers = private_heads(n_nonmembers, 64, "val", seed)
    model = recon.load_prior(prior, device)
    images, _ = st.synthetic_set(model, n_synthetic, steps=steps, seed=seed + st.SAMPLE_SEED)
    result = {"prior": prior, "card": st.card_summary(prior),
              "membership": st.membership_audit(model, members, nonmembers, seed=seed),
              "memorisation": st.memorisation(images, members[0], nonmembers[0][:n_members])}
    print(f"  membership AUC {result['membership']['auc']:.3f} (TPR at 0.1 % FPR "
          f"{result['membership']['tpr_at_0.1pct_fpr']:.2f}); synthetic nearer a member: "
          f"{result['memorisation']['closer_to_train']:.2f}", flush=True)
    return result


@experiment
def synthetic_audit_calibrated(*, reference: str = "head_ct_public",
                               studies=("results/synthetic_audit_control.json", "results/synthetic_dp.json",
                                        "results/synthetic_dp_long.json"), seed: int = 0, device: str = "cpu") -> dict:
    """The membership attack with difficulty calibration (:func:`studies.synthetic_study.calibrated_membership`) on
    every prior the synthetic-data studies audited: each stored denoising loss minus the public prior's loss on the
    same image under the same noise draws (the public prior, unconditional, saw no private image, so an attacker may
    hold it). Reads the audited losses from ``studies`` (their SHA-256 recorded) and computes only the reference."""
    import hashlib

    import numpy as np

    from recon.data.hospital import private_heads
    from studies import synthetic_study as st

    model, cache = recon.load_prior(reference, device), {}

    def reference_losses(split, n):
        if (split, n) not in cache:
            cache[split, n] = st.denoising_losses(model, private_heads(n, 64, split, seed)[0], None, seed=seed)
        return cache[split, n]

    def audited(results):
        if "membership" in results:  # the positive control
            return [(results["prior"], results["membership"])]
        models = results["models"]
        if isinstance(models, dict):  # the DP study: label -> entry
            return [(entry["checkpoint"], entry["membership"]) for entry in models.values()]
        return [(entry["prior"], entry["membership"]) for entry in models]

    out = {"reference": reference, "card": st.card_summary(reference), "sources": {}, "models": []}
    for path in studies:
        out["sources"][path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        for prior, membership in audited(load_results(path)["results"]):
            if prior == reference:
                continue
            member, nonmember = (np.asarray(v) for v in membership["losses"])
            attack = st.calibrated_membership(member, nonmember, reference_losses("train", len(member)),
                                              reference_losses("val", len(nonmember)), seed=seed)
            raw = {k: membership.get(k) for k in ("auc", "low", "high", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr")}
            out["models"].append({"study": path, "prior": prior, "members": len(member),
                                  "nonmembers": len(nonmember), "raw": raw, "calibrated": attack})
            print(f"  {prior}: membership AUC {raw['auc']:.3f} raw, {attack['auc']:.3f} calibrated "
                  f"(TPR at 1 % FPR {attack['tpr_at_1pct_fpr']:.2f})", flush=True)
    return out


@experiment
def synthetic_pe(*, epsilons=(1.0, 4.0, 10.0), delta: float = 1e-5, levels=(0.5, 0.35, 0.25, 0.18, 0.12),
                 threshold_sigmas: float = 2.0, n_synthetic: int = 1024, n_private: int = 2048, n_test: int = 1024,
                 steps: int = 18, show: int = 8, seed: int = 0, device: str = "cpu", out: str | None = None,
                 samples: str = "results/synthetic_pe_samples.npz") -> dict:
    """Private Evolution (:mod:`studies.private_evolution`) over the public prior, the training-free alternative to
    DP-SGD: at each ε, each class evolved on that class's private training images (one variation level per round in
    ``levels``, vote noise set by the accountant, counts under ``threshold_sigmas`` noise deviations cut), then the
    synthetic set's label fidelity, utility, fidelity and memorisation as in :func:`synthetic_cfg` and
    :func:`synthetic_dp`; ``show`` images per class and ε go to ``samples``. With ``out``, the partial result is
    written after every ε."""

    from studies import synthetic_study as st
    from studies.private_evolution import CLASS_SEED, Evolution, private_evolution

    sets = st.private_sets(n_private, n_test, seed)
    real, summary = st.real_reference(sets, n_synthetic, seed=seed)
    prior = recon.load_prior(st.DP_MODELS["public only"], device)
    images, labels = sets["train"]

    def run(epsilon):
        settings = Evolution.at_epsilon(n_synthetic // 2, levels, epsilon, delta, threshold_sigmas=threshold_sigmas,
                                        steps=steps)
        sigma = settings.sigma
        synthetic = torch.cat([private_evolution(prior, images[labels == c], settings, seed=seed + c * CLASS_SEED)
                               for c in (0, 1)]).cpu()
        synthetic_labels = torch.repeat_interleave(torch.tensor([0, 1]), n_synthetic // 2)
        arrays.update({f"eps{epsilon:g}|class{c}": a for c, a in st.shown(synthetic, show).items()})
        result = {"epsilon": epsilon, "delta": delta, "sigma": sigma, "votes": settings.votes,
                  "label_fidelity": st.label_fidelity(real["model"], synthetic, synthetic_labels),
                  **st.utility_and_fidelity(synthetic, synthetic_labels, sets, real, seed=seed),
                  "memorisation": st.memorisation(synthetic, sets["train"][0], sets["val"][0])}
        print(f"  PE at ε = {epsilon}: σ = {sigma:.2f}, AUC {result['classifier']['auc']:.3f}", flush=True)
        return result

    arrays = {}
    result = each_setting({"real": summary, "levels": list(levels), "runs": []}, "runs", epsilons, run, out)
    return {**result, "samples": save_samples(arrays, samples)}


@experiment
def synthetic_sim_pe(*, epsilons=(1.0, 4.0, 10.0), delta: float = 1e-5, levels=(0.5, 0.35, 0.25, 0.18, 0.12),
                     threshold_sigmas: float = 2.0, n_synthetic: int = 1024, n_private: int = 2048,
                     n_test: int = 1024, show: int = 8, seed: int = 0, out: str | None = None,
                     samples: str = "results/synthetic_sim_pe_samples.npz") -> dict:
    """Private Evolution with the head simulator as its source (Sim-PE, :mod:`studies.simulator_evolution`): the
    class label is a fixed input of the simulator, the lesion model a public guess
    (:data:`~studies.simulator_evolution.PUBLIC_LESIONS`) that the votes may correct. Three kinds of run, each scored
    as :func:`synthetic_pe` scores its sets: ``"no votes"``, the simulator's first population (no contact with the
    private images, ε = 0); ``"oracle"``, the same count drawn from the hospital's own generator (a ceiling no
    hospital has); and PE at each ε (votes, noise and threshold as :func:`synthetic_pe`). Every run records the
    lesion statistics of its class-1 population by round, with the private images' own beside them, and a PE run how
    many candidates of each class kept a vote count after the cut, by round (the population's diversity)."""

    from recon.data.phantoms import head_ct_params
    from studies import synthetic_study as st
    from studies.private_evolution import Evolution
    from studies.simulator_evolution import HOSPITAL_LESIONS, PUBLIC_LESIONS, evolve, lesion_statistics, simulated_set

    sets = st.private_sets(n_private, n_test, seed)
    real, summary = st.real_reference(sets, n_synthetic, seed=seed)
    images, labels = sets["train"]
    per_class, arrays = n_synthetic // 2, {}
    synthetic_labels = torch.repeat_interleave(torch.tensor([0, 1]), per_class)
    truth = [h for h, y in zip((head_ct_params("train", seed, i) for i in range(n_private)), labels.tolist()) if y]

    def run(setting):
        if setting in ("no votes", "oracle"):
            synthetic, heads = simulated_set(per_class, seed, None if setting == "oracle" else PUBLIC_LESIONS)
            name, rounds = setting, [lesion_statistics(heads)]
            extra = {"epsilon": 0.0 if setting == "no votes" else None}
        else:
            settings = Evolution.at_epsilon(per_class, levels, setting, delta, threshold_sigmas=threshold_sigmas)
            synthetic, rounds, kept = evolve(images, labels, settings, seed=seed)
            name, extra = f"eps{setting:g}", {"epsilon": setting, "delta": delta, "sigma": settings.sigma,
                                             "votes": settings.votes, "kept_by_round": kept}
        arrays.update({f"{name}|class{c}": a for c, a in st.shown(synthetic, show).items()})
        result = {"run": name, **extra, "lesions_by_round": rounds,
                  "label_fidelity": st.label_fidelity(real["model"], synthetic, synthetic_labels),
                  **st.utility_and_fidelity(synthetic, synthetic_labels, sets, real, seed=seed),
                  "memorisation": st.memorisation(synthetic, sets["train"][0], sets["val"][0])}
        print(f"  {name}: AUC {result['classifier']['auc']:.3f}", flush=True)
        return result

    base = {"real": summary, "levels": list(levels), "private_lesions": lesion_statistics(truth),
            "lesion_models": {"public": dataclasses.asdict(PUBLIC_LESIONS),
                              "hospital": dataclasses.asdict(HOSPITAL_LESIONS)}, "runs": []}
    result = each_setting(base, "runs", ["no votes", "oracle", *epsilons], run, out)
    return {**result, "samples": save_samples(arrays, samples)}


@experiment
def real_scans(*, nfe: int = 30, n_val: int = 8, n_trials: int = 10, spread_k: int = 8, n_phantoms: int = 32,
               factor: int = 4, seed: int = 0, device: str = "cpu", figure: str = "results/real_scans_figure.npz",
               modalities=("ct", "mri"), reuse: str = "results/real_scans.json", search: str = "tpe") -> dict:
    """Does it work on real scans? (studies.real_study): the shipped and retrained priors (for MR also the prior
    trained on synthetic heads), TV, DPS and the supervised networks on real head CT (16 views) and brain MR (4x) slices
    of people no prior saw, measured off the grid, noise-free and noisy; the priors' posterior spread there; the priors
    on the phantom test sets. Three example slices per modality go to ``figure`` (float16 arrays; its SHA-256 is in the
    result). A modality left out of ``modalities`` keeps its entries (and figure arrays) from ``reuse``. ``search``:
    optuna's TPE with ``n_trials`` trials, or "protocol", the grid of :func:`recon.tuning.search_plan` (13 points for
    each method's one free parameter; ``n_trials`` then unused)."""
    import hashlib
    import io

    import numpy as np

    from recon.data.archives import SOURCES
    from studies.real_study import real_scan_study

    out, arrays = real_scan_study(nfe=nfe, n_val=n_val, n_trials=n_trials, spread_k=spread_k, n_phantoms=n_phantoms,
                                  modalities=modalities, factor=factor, seed=seed, search=search, device=device)
    left = [m for m in ("ct", "mri") if m not in modalities]
    if left:
        stored = load_results(reuse)
        out.update({m: stored["results"][m] for m in left})
        out["reused"] = {"from": reuse, "modalities": left, "provenance": stored["provenance"]}
        with np.load(stored["results"]["figure"]["path"]) as old:
            arrays.update({k: old[k] for k in old.files if k.split("|")[0] in left})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    Path(figure).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(figure, lambda path: path.write_bytes(buffer.getvalue()))
    packaged = {name: {"package": s.package, "version": s.version, "sha256": s.sha256, "file": s.member,
                       "licence": s.licence, "description": s.description} for name, s in SOURCES.items()}
    return {**out, "figure": {"path": figure, "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
                              "keys": sorted(arrays)}, "packaged_sources": packaged}


def _solver_entry(task, prior, entry, tuned, *, nfes, n_images, table_nfe, seed, device) -> dict:
    """One task of the solvers experiment: its curve over ``nfes``, with the evaluation's stored proximal and DPS rows
    (``entry``) at the table's budget."""
    from studies.solver_study import curve_rows

    curve = curve_rows(task, prior, tuned, nfes=nfes, n_images=n_images, seed=seed, device=device,
                       skip={table_nfe: set(task.score_methods())})
    table = {r["method"]: r for r in entry["rows"] if r["method"] in task.score_methods()}
    for point in curve:
        if point["nfe"] == table_nfe:
            point["rows"] = {**table, **point["rows"]}
    return {**task.header(), "split": task.split, "dataset": task.dataset, "prior": protocol.PRIORS[task.dataset],
            "curve": curve, "tuned": {str(b): t for b, t in tuned.items()}}


@experiment
def solvers(*, budgets=(8, 60), nfes=(4, 8, 10, 30, 60, 100), n_images: int = 32, n_val: int = 8, n_trials: int = 10,
            seed: int = 0, device: str = "cpu", evaluation: str = "results/evaluation.json", tasks=None,
            search: str = "tpe", out: str | None = None) -> dict:
    """Today's solvers (studies.solver_study) on the protocol tasks (``tasks``: their keys; None: all), tuned alike
    at each of ``budgets`` on validation images (``search``: :func:`recon.tuning.search_plan`'s, "tpe" with
    ``n_trials`` or "protocol": a grid for one or two parameters, else TPE with at least 30 trials) and tested on
    ``n_images`` off-grid test images at every budget of ``nfes``. The table's budget (the evaluation's ``nfe``) keeps
    the evaluation's tuned proximal and DPS values and their rows there. With ``out``, the partial result is written
    after every task and every tuning within one, and a rerun with the same options continues from it."""
    options = {"budgets": list(budgets), "nfes": list(nfes), "n_images": n_images, "n_val": n_val,
               "n_trials": n_trials, "seed": seed, **({"search": search} if search != "tpe" else {})}
    partial = json.loads(Path(out).read_text()) if out and Path(out).exists() else {}
    same = partial.get("settings") == options
    done = {e["task"]: e for e in partial.get("tasks", [])} if same else {}
    stored = load_results(evaluation)
    table_nfe, entries = stored["results"]["options"]["nfe"], {e["task"]: e for e in stored["results"]["tasks"]}
    if table_nfe not in budgets:
        raise ValueError(f"budgets {budgets} must hold the evaluation's budget {table_nfe} (its stored rows are used).")
    priors, tuned_by_setting = protocol.protocol_priors(device), {}
    result = {"settings": options, "tasks": [], "evaluation": stored["provenance"]}
    tune = {"few_step": min(budgets), "table_nfe": table_nfe, "n_val": n_val, "n_trials": n_trials, "seed": seed,
            "device": device, "search": search}

    def run(task):
        setting, prior = f"{task.name}|{task.noise_name}", priors[task.dataset]
        if task.key in done:
            print(task.key, "(stored)", flush=True)
            tuned_by_setting.setdefault(setting, {int(b): {label: tuned_from_json(t) for label, t in tuned.items()}
                                                  for b, tuned in done[task.key]["tuned"].items()})
            return done[task.key]
        print(task.key, flush=True)
        entry = entries[task.key]
        if setting not in tuned_by_setting:
            progress = partial.get("in_progress") if same else None
            resumed = progress["tuned"] if progress and progress["task"] == task.key else {}
            kept = {m: tuned_from_json(entry["tuned"][m]) for m in task.score_methods()}
            tuned_by_setting[setting] = _tune_solver_setting(task, prior, budgets, kept, resumed, tune,
                                                             lambda now: write_partial(out, {**result, "in_progress": {
                                                                 "task": task.key, "tuned": now}}))
        return _solver_entry(task, prior, entry, tuned_by_setting[setting], nfes=nfes, n_images=n_images,
                             table_nfe=table_nfe, seed=seed, device=device)

    chosen = [t for t in protocol.tasks(seed=seed) if tasks is None or t.key in tasks]
    if tasks is not None and len(chosen) != len(tasks):
        raise ValueError(f"unknown tasks {sorted(set(tasks) - {t.key for t in chosen})}; choose protocol task keys.")
    return each_setting(result, "tasks", chosen, run, out)


def _tune_solver_setting(task, prior, budgets, kept: dict, resumed: dict, tune: dict, save) -> dict:
    """``budget -> label -> Tuned`` of the solvers experiment's setting: the table's ``kept`` values at its budget,
    the ``resumed`` ones (``str(budget) -> label -> stored Tuned``, from a run cut short) and the rest tuned now;
    ``save(now)`` gets every finished tuning (stored form) after each, so that a kill loses one method's tuning."""
    from studies.solver_study import tune_setting

    now = {b: dict(ts) for b, ts in resumed.items()}  # already in stored form

    def record(budget):
        def on_tuned(label, tuned):
            now.setdefault(str(budget), {})[label] = to_json(tuned)
            save(now)
        return on_tuned

    out = {}
    for b in budgets:
        finished = {label: tuned_from_json(t) for label, t in resumed.get(str(b), {}).items()}
        out[b] = tune_setting(task, prior, b, stored={**(kept if b == tune["table_nfe"] else {}), **finished},
                              on_tuned=record(b), **tune)
    return out


@experiment
def tuning(*, nfe: int = 60, methods=None, draws: int = 1, n_val: int = 16, n_images: int = 32, seed: int = 0,
           device: str = "cpu", tasks=None, out: str | None = None) -> dict:
    """The protocol's tuned values, one source (:mod:`studies.tuning_study`): every tunable method of each protocol
    task (``tasks``: their keys; None: all) at ``nfe``, or those named in ``methods``, swept over its grid on
    ``draws x n_val`` validation images and ``n_images`` test images (one draw: the choice's stability from bootstrap
    resamples of the validation images, which costs no reconstruction; three disjoint draws cost 80 % more per point
    at 16 validation and 32 test images). With ``out``, the partial result is written
    after every (task, method), and a rerun with the same options continues from it; as such a study can span
    sessions and machines, each finished sweep keeps the record of the run that finished it (``record``)."""
    from studies.tuning_study import planned, sweep

    options = {"nfe": nfe, "methods": methods, "draws": draws, "n_val": n_val, "n_images": n_images, "seed": seed}
    partial = json.loads(Path(out).read_text()) if out and Path(out).exists() else {}
    done = {(e["task"], e["label"]): e for e in partial.get("sweeps", [])} if partial.get("settings") == options else {}
    priors = protocol.protocol_priors(device)
    known = {t.key for t in protocol.tasks(seed=seed)}
    if tasks is not None and not set(tasks) <= known:
        raise ValueError(f"unknown tasks {sorted(set(tasks) - known)}; choose protocol task keys.")
    items = [item for item in planned(options, priors) if tasks is None or item[0].key in tasks]

    result = {"settings": options, "sweeps": []}
    version = code_version()  # the code as imported now (later edits to the tree do not run here)
    progress = partial.get("in_progress") if partial.get("settings") == options else None

    def run(item):
        task, label, choice = item
        if (task.key, label) in done:
            return done[task.key, label]
        print(task.key, label, flush=True)
        here = progress if progress and (progress["task"], progress["label"]) == (task.key, label) else None

        def save(points):  # the finished sweeps and this one's finished points, so that a kill loses one point
            write_partial(out, {**result, "in_progress": {"task": task.key, "label": label, **points}})

        start = time.perf_counter()
        entry = {**task.header(), "split": task.split, "label": label, "prior": protocol.PRIORS[task.dataset],
                 **sweep(task, choice.method, choice.options, choice.prior, draws=draws, n_val=n_val,
                         n_images=n_images, seed=seed, device=device, done=here, save=save if out else None)}
        entry["record"] = {**provenance("python scripts/make_results.py tuning", device=device),
                           "code_version": version, "seconds": round(time.perf_counter() - start),
                           "resumed_points": len(here["rows"]) if here else 0}
        return entry

    return each_setting(result, "sweeps", items, run, out)


def _lesion_choices(task: protocol.Task, entry: dict, solver_entry: dict | None, prior, table_nfe: int) -> dict:
    """The methods of the lesion study on a task: the evaluation's rows as tuned there, today's solvers as tuned
    at the table's budget (``results/solvers.json``), and the supervised networks trained for that setting (CT: its
    view count; MRI: its acceleration, equispaced) and for the family of settings."""
    choices = {r["method"]: Choice(r["method"], r["options"], prior) for r in entry["rows"]}
    if solver_entry is not None:
        from studies.solver_study import SOLVERS, rows_at

        rows = rows_at(solver_entry, table_nfe)
        choices.update({label: Choice(rows[label]["method"], rows[label]["options"], prior)
                        for label in SOLVERS if label in rows})
    if task.dataset == "head_ct":
        views = task.name.split(", ")[1].split(" ")[0]
        networks = {"network (family)": "head_ct_sup_family", f"network ({views} views)": f"head_ct_sup_ct{views}"}
    else:
        rate = task.operator.acceleration
        networks = {"network (family)": "brain_sup_family", f"network ({rate}x)": f"brain_sup_mri{rate}_equispaced"}
    choices.update({label: Choice("supervised", {"network": name}) for label, name in networks.items()
                    if _shipped(name)})
    return choices


def _lesion_rows(data: protocol.Measured, truth_set, tau: float, choices: dict, *, seed: int, device: str) -> dict:
    """Each choice's lesion fidelity (:func:`studies.lesions.fidelity` with its summary) on ``data``, whose truth is
    ``truth_set``'s, with its PSNR and cost."""
    from studies.lesions import fidelity, summary

    if not torch.equal(data.truth, truth_set.truth):
        raise AssertionError("the lesion set's truth is not the measured images; the phantoms changed.")
    rows = {}
    for label, choice in choices.items():
        x, row = protocol.reconstruct_row(data, choice, seed=seed, device=device)
        found = fidelity(truth_set, x, tau)
        rows[label] = {**summary(found), **found, "method": choice.method, "options": choice.options,
                       "psnr": row.psnr, "nfe": row.nfe}
        print(f"  {label}: {rows[label]['contrast']:.2f} contrast, {rows[label]['missed']} missed, "
              f"{rows[label]['invented']} invented", flush=True)
    return rows


def _table_and_solvers(evaluation: str, solvers: str) -> tuple:
    """The stored results table, its entries by task, its budget, and the solvers study's entries by task (none if
    that file is absent), for the studies that run the table's tuned values."""
    stored = load_results(evaluation)
    entries, table_nfe = {e["task"]: e for e in stored["results"]["tasks"]}, stored["results"]["options"]["nfe"]
    solved = ({e["task"]: e for e in load_results(solvers)["results"]["tasks"]} if Path(solvers).exists() else {})
    return stored, entries, table_nfe, solved


def _shipped(name: str) -> bool:
    from recon.models.checkpoints import resolve

    try:
        return resolve(name) is not None
    except FileNotFoundError:
        return False


@experiment
def lesions(*, n_images: int = 32, seed: int = 0, device: str = "cpu", evaluation: str = "results/evaluation.json",
            solvers: str = "results/solvers.json", out: str | None = None) -> dict:
    """Lesion fidelity (:mod:`studies.lesions`) of every method of the results table, today's solvers and the
    supervised networks on the CT tasks' lesion-bearing test phantoms, each with its stored tuned values: contrast
    recovered, lesions missed and invented, against the detector calibrated on the truth."""
    from studies.lesions import fidelity, lesion_set, summary, threshold

    stored, entries, table_nfe, solved = _table_and_solvers(evaluation, solvers)
    truth_set, priors = lesion_set(n_images, seed=seed), protocol.protocol_priors(device)
    tau = threshold(truth_set)

    def run(task):
        print(task.key, flush=True)
        choices = _lesion_choices(task, entries[task.key], solved.get(task.key), priors[task.dataset], table_nfe)
        rows = _lesion_rows(protocol.measured(task, n_images, seed), truth_set, tau, choices, seed=seed, device=device)
        return {**task.header(), "rows": rows}

    ct = [t for t in protocol.tasks(seed=seed) if t.dataset == "head_ct" and t.split == "test"]
    truth = {**summary(fidelity(truth_set, truth_set.truth, tau)), "threshold": tau}
    return each_setting({"truth": truth, "evaluation": stored["provenance"], "tasks": []}, "tasks", ct, run, out,
                        resume={"n_images": n_images, "seed": seed, "evaluation": evaluation, "solvers": solvers})


@experiment
def lesions_mri(*, n_images: int = 32, seed: int = 0, device: str = "cpu",
                evaluation: str = "results/evaluation.json", solvers: str = "results/solvers.json",
                out: str | None = None) -> dict:
    """Lesion fidelity on brain slices, which carry no lesions of their own: two synthetic lesions per test slice
    (:func:`studies.lesions.mri_lesion_set`), added to the fine image before it is measured off the grid, at the
    table's in-distribution MRI tasks; every method of the results table, today's solvers and the supervised networks,
    each with its stored tuned values (tuned on lesion-free slices, as a deployed method would be)."""
    from recon.operators.noise import simulate
    from studies.lesions import fidelity, mri_lesion_set, summary, threshold

    stored, entries, table_nfe, solved = _table_and_solvers(evaluation, solvers)
    (truth_set, fine), priors = mri_lesion_set(n_images, seed=seed), protocol.protocol_priors(device)
    tau = threshold(truth_set)

    def run(task):
        print(task.key, flush=True)
        data = protocol.Measured(truth_set.truth, simulate(task.operator, truth_set.truth, task.noise, seed, fine))
        choices = _lesion_choices(task, entries[task.key], solved.get(task.key), priors[task.dataset], table_nfe)
        return {**task.header(), "rows": _lesion_rows(data, truth_set, tau, choices, seed=seed, device=device)}

    mri = [t for t in protocol.tasks(seed=seed) if t.dataset == "brain" and t.split == "test"]
    truth = {**summary(fidelity(truth_set, truth_set.truth, tau)), "threshold": tau}
    return each_setting({"truth": truth, "evaluation": stored["provenance"], "tasks": []}, "tasks", mri, run, out,
                        resume={"n_images": n_images, "seed": seed, "evaluation": evaluation, "solvers": solvers})


@experiment
def prior_seeds(*, priors=("head_ct", "head_ct_seed1", "head_ct_seed2"), evaluation: str = "results/evaluation.json",
                n_images: int = 32, seed: int = 0, device: str = "cpu", tasks=None, methods=None,
                out: str | None = None) -> dict:
    """Training as a variance source: the results table's score methods (Song et al.'s step or the DDRM rule, and
    DPS; or those of them in ``methods``) on the CT tasks' test images (``tasks``: their keys; None: every CT test
    task) with each head-CT prior of ``priors`` (the shipped one and its card's command with another ``--seed``), all
    at the table's stored tuned values (``evaluation``), so that what differs between the priors is their training
    run. TV and the classical inverse use no prior and are not repeated."""
    stored = load_results(evaluation)
    entries = {e["task"]: e for e in stored["results"]["tasks"]}
    ct = [t for t in protocol.tasks(seed=seed) if t.dataset == "head_ct" and t.split == "test"]
    if tasks is not None and not set(tasks) <= {t.key for t in ct}:
        raise ValueError(f"unknown tasks {sorted(set(tasks) - {t.key for t in ct})}; choose CT protocol task keys.")
    loaded = {name: recon.load_prior(name, device) for name in priors}

    def run(task):
        print(task.key, flush=True)
        data, entry = protocol.measured(task, n_images, seed), entries[task.key]
        rows = {}
        for name, prior in loaded.items():
            choices = {m: Choice.tuned(tuned_from_json(entry["tuned"][m]), prior) for m in task.score_methods()
                       if methods is None or m in methods}
            rows[name] = protocol.evaluate_all(data, choices, seed=seed, device=device)
        return {**task.header(), "rows": rows}

    cards = {name: {key: prior.card.get(key) for key in ("command", "sha256", "hardware", "wall_time_s")}
             for name, prior in loaded.items()}
    chosen = [t for t in ct if tasks is None or t.key in tasks]
    return each_setting({"priors": cards, "evaluation": stored["provenance"], "tasks": []}, "tasks", chosen, run, out,
                        resume={"n_images": n_images, "seed": seed, "tasks": tasks, "methods": methods})


@experiment
def real_solvers(*, n_val: int = 8, seed: int = 0, device: str = "cpu", evaluation: str = "results/evaluation.json",
                 solvers: str = "results/solvers.json", modalities=("ct", "mri"), out: str | None = None) -> dict:
    """Today's solvers on the real scans (:mod:`studies.real_solvers`), person by person: every real slice of each
    modality measured at the protocol's CT 16-view or MRI 4x setting, noise-free and noisy; the evaluation's and the
    solvers study's stored values at the table's budget, each solver also warm-started (its level tuned on the
    setting's validation phantoms, ``n_val`` images, the protocol grid); the classical inverse beside them."""
    from recon.operators.noise import simulate
    from studies.real_solvers import SETTINGS, real_condition, stored_tuned
    from studies.real_study import real_images

    stored, solved = load_results(evaluation), load_results(solvers)
    table_nfe = stored["results"]["options"]["nfe"]
    entries = {e["task"]: e for e in stored["results"]["tasks"]}
    solver_entries = {e["task"]: e for e in solved["results"]["tasks"]}
    priors = protocol.protocol_priors(device)

    def run(task):
        print(task.key, flush=True)
        modality = next(m for m, name in SETTINGS.items() if name == task.name)
        scans, truth, fine = real_images(modality)
        data = protocol.Measured(truth, simulate(task.operator, truth, task.noise, seed, fine))
        tuned = stored_tuned(task, entries[task.key], solver_entries[task.key], table_nfe)
        return real_condition(task, data, scans, tuned, priors[task.dataset], n_val=n_val, seed=seed,
                              device=device)

    wanted = {SETTINGS[m] for m in modalities}
    chosen = [t for t in protocol.tasks(seed=seed) if t.name in wanted and t.split == "test"]
    result = {"nfe": table_nfe, "evaluation": stored["provenance"], "solvers": solved["provenance"], "tasks": []}
    return each_setting(result, "tasks", chosen, run, out, resume={"n_val": n_val, "seed": seed,
                                                                  "modalities": list(modalities)})
