"""The consistency chapter's head-to-head: a consistency model with the proximal step at 1, 2, 4 and 8 network
evaluations against the diffusion prior at the same budgets (over Euler–Maruyama, and in the consistency sampler with
the proximal step or, on noisy data, the DDRM rule) and at 60, 200 and 1000, one Tweedie estimate plus a proximal step, DPS, and the consistency model with the hard projection (CoSIGN-style) and with
the consistency paper's replacement step; every free parameter (λ, the re-noising levels, Tweedie's σ, DPS's ζ) tuned
on validation images with the protocol's trial budget at the budget it is tested with. This module owns the
chapter's rows (:func:`choices`), the realism of its samples and its goals; tuning and testing are the protocol's.
"""

from __future__ import annotations

import dataclasses

import torch

import recon
from recon.data.offgrid import fine_and_truth
from recon.models.consistency import ODEConsistency
from studies import protocol
from studies.protocol import Choice
from studies.realism import denoising_residual
from studies.results import Brief

CM_BUDGETS = (1, 2, 4, 8)
DIFFUSION_BUDGETS = (1, 2, 4, 8, 60, 200, 1000)
# The diffusion prior at 1000 evaluations runs with the λ tuned at 200 (tuning at 1000 costs 80,000 evaluations per
# setting); every other row is tuned at its own budget.
BORROWED = {1000: 200}


# The rows the results table (``results/evaluation.json``) also holds, for the same task, budget and test images: where
# the table ran the same prior, the chapter shows the table's tuned row rather than its own tuning of it (one tuned
# value per setting; two 10-trial searches of DPS's peaked ζ landed up to 4.6 dB apart).
TABLE_ROWS = ("DPS|60", "diffusion + proximal step|60")
# Likewise the rows today's solvers (``results/solvers.json``) tune at their own budget of SOLVER_BUDGET evaluations:
# the re-noising sampler over the diffusion prior and Song et al.'s step (two 10-trial tunings of the first landed
# up to 1.7 dB apart on CT).
SOLVER_BUDGET = 8
SOLVER_ROWS = (f"diffusion, CM sampler + proximal step|{SOLVER_BUDGET}", f"diffusion + proximal step|{SOLVER_BUDGET}")
# The diffusion prior of each data family in the stored run: the checkpoints named like their family, from which the
# consistency models were tuned (protocol.load_priors' default); the results table runs protocol.PRIORS.
DIFFUSION_PRIORS = {family: family for family in protocol.FAMILIES}


def with_table_rows(entry: dict, table_entry: dict, prior: str, source: str = "results/evaluation.json") -> dict:
    """``entry`` (one setting of the head-to-head) with :data:`TABLE_ROWS` replaced by ``table_entry``'s rows of the
    same method (one setting of the results table, read from ``source``) when that table ran ``prior``, the
    chapter's diffusion prior, on the same task and as many test images; otherwise ``entry`` unchanged. A replaced
    row and its tuning name their ``source``."""
    rows = {row["method"]: row for row in table_entry["rows"]}
    return _with_rows(entry, table_entry, rows, table_entry["tuned"], prior, TABLE_ROWS, source)


def with_solver_rows(entry: dict, solver_entry: dict, prior: str, source: str = "results/solvers.json") -> dict:
    """``entry`` with :data:`SOLVER_ROWS` replaced by the solver study's rows of the same method, tuned and tested at
    :data:`SOLVER_BUDGET` evaluations (one setting of ``results/solvers.json``), under the same conditions as
    :func:`with_table_rows`."""
    point = next((p for p in solver_entry["curve"] if p["nfe"] == SOLVER_BUDGET == p["tuned_at"]), None)
    if point is None:
        raise ValueError(f"{source} has no point tuned and tested at {SOLVER_BUDGET} evaluations for "
                         f"{solver_entry['task']}; rerun the solver study with {SOLVER_BUDGET} among its budgets.")
    tuned = solver_entry["tuned"][str(SOLVER_BUDGET)]
    return _with_rows(entry, solver_entry, point["rows"], tuned, prior, SOLVER_ROWS, source)


def _with_rows(entry: dict, other: dict, rows_by_method: dict, tuned_by_method: dict, prior: str, labels: tuple,
               source: str) -> dict:
    """``entry`` with each of ``labels`` replaced by the row and tuning of its method from another study's setting
    ``other``, when that setting is the same task over ``prior`` (else ``entry`` itself)."""
    if other["task"] != entry["task"] or other["prior"] != prior:
        return entry
    rows, tuned = dict(entry["rows"]), dict(entry["tuned"])
    for label in labels:
        method = entry["tuned"][label]["method"]
        if len(rows_by_method[method]["psnr"]) != len(entry["rows"][label]["psnr"]):
            raise ValueError(f"{source} scores {method} on {len(rows_by_method[method]['psnr'])} test images of "
                             f"{entry['task']}, the chapter on {len(entry['rows'][label]['psnr'])}; rerun one with the "
                             "other's n_images.")
        rows[label] = {**rows_by_method[method], "source": source}
        tuned[label] = {**tuned_by_method[method], "prior": entry["tuned"][label]["prior"], "source": source}
    return {**entry, "rows": rows, "tuned": tuned}


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
        if task.noise is not None:  # the same noise-aware rule the consistency model gets
            out[f"diffusion, CM sampler + DDRM rule|{n}"] = ("diffusion", "consistency", {"guide": "ddrm", "steps": n})
    proximal = task.score_methods()[0]
    for n in DIFFUSION_BUDGETS:
        if n not in BORROWED:
            out[f"diffusion + proximal step|{n}"] = ("diffusion", proximal, {"steps": n})
    out["Tweedie + proximal step|1"] = ("diffusion", "tweedie", {})
    out["DPS|60"] = ("diffusion", "dps", {"steps": 60})
    return out


def tune_rows(task: protocol.Task, priors: dict, *, n_val: int, n_trials: int, seed: int, device="cpu",
              labels: list | None = None) -> dict[str, Brief]:
    """Every row of :func:`choices` (or those in ``labels``) tuned on the task's validation images, with the prior
    kind it runs with; the rows of :data:`BORROWED` budgets take the tuning of the budget they borrow from."""
    rows = {label: row for label, row in choices(task).items() if labels is None or label in labels}
    tuned = protocol.tune_all(task, {label: Choice(method, fixed, priors[kind]) for label, (kind, method, fixed)
                                     in rows.items()},
                              n_val=n_val, n_trials=n_trials, seed=seed, device=device,
                              name=lambda label: f"cm|{task.key}|{label}")
    out = {label: Brief(t, prior=rows[label][0]) for label, t in tuned.items()}
    for n, source in BORROWED.items():
        entry = out.get(f"diffusion + proximal step|{source}")
        if entry is not None:
            borrowed = dataclasses.replace(entry.tuned, fixed={**entry.tuned.fixed, "steps": n})
            out[f"diffusion + proximal step|{n}"] = Brief(borrowed, entry.prior, borrowed_from=source)
    return out


def test_rows(task: protocol.Task, priors: dict, tuned: dict[str, Brief], *, n_images: int, seed: int,
              device="cpu") -> dict:
    """Every tuned row on the task's off-grid test images: per-image PSNR, SSIM, residual, NFE, seconds."""
    data = protocol.measured(task, n_images, seed)
    runs = {label: Choice.tuned(entry.tuned, priors[entry.prior]) for label, entry in tuned.items()}
    rows = protocol.evaluate_all(data, runs, seed=seed, device=device)
    return {**task.header(), "noise_std": data.measurement.noise_std, "rows": rows}


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


@torch.no_grad()
def consistency_check(cm, prior, images: torch.Tensor, sigmas, *, steps: int = 40, seed: int = 0) -> dict:
    """Per noise level: how far one evaluation lands from the prior's trajectory end (RMS in image units) and from the
    clean image (PSNR), for the consistency model and for the prior's own posterior mean (Tweedie). A consistency model
    should be the closer of the two to the trajectory end; the posterior mean, by construction, is the closer to the
    clean image on average."""
    out = {}
    generator = torch.Generator().manual_seed(seed)
    for sigma in sigmas:
        x = images + sigma * torch.randn(images.shape, generator=generator)
        end = ODEConsistency(prior, steps)(x, sigma)
        estimates = {"consistency model": cm(x, sigma), "posterior mean (Tweedie)": prior(x, sigma),
                     f"trajectory end (ODE, {2 * steps - 1} NFE)": end}
        out[float(sigma)] = {label: {"to_trajectory_end": (e - end).flatten(1).pow(2).mean(1).sqrt().tolist(),
                                     "psnr": recon.metrics.psnr(e, images).tolist()}
                             for label, e in estimates.items()}
    return out


def chosen(entry: dict, families: tuple[str, ...], budgets) -> str:
    """The row label among ``families`` x ``budgets`` with the best *validation* value (test images choose nothing)."""
    labels = [f"{family}|{n}" for family in families for n in budgets if f"{family}|{n}" in entry["tuned"]]
    return max(labels, key=lambda label: entry["tuned"][label]["value"])


def verdict(comparison, threshold: float) -> str:
    """Whether a paired difference meets ``mean >= threshold``: "met" if its whole 95 % interval lies at or above the
    threshold, "not met" if it lies below, else "undecided"."""
    return "met" if comparison.low >= threshold else "not met" if comparison.high < threshold else "undecided"


def goal_rows(entry: dict, *, max_nfe: int = 4) -> dict[str, str]:
    """The rows the issue's goals compare on one setting, each picked on validation values: the consistency model
    with the proximal step (or, on noisy data, the DDRM rule) at the budget <= ``max_nfe`` that validates best; the
    better diffusion row at that budget (Euler–Maruyama or the consistency sampler); Tweedie + proximal step; the
    diffusion prior with the proximal step at 60 evaluations. Rows a setting lacks are skipped."""
    noisy = entry["noise"] != "noise-free"
    cm = chosen(entry, ("CM + proximal step",) + (("CM + DDRM rule",) if noisy else ()),
                [n for n in CM_BUDGETS if n <= max_nfe])
    n = int(cm.split("|")[1])
    same = chosen(entry, ("diffusion + proximal step", "diffusion, CM sampler + proximal step")
                  + (("diffusion, CM sampler + DDRM rule",) if noisy else ()), [n])
    return {"cm": cm, "same_nfe": same, "tweedie": "Tweedie + proximal step|1", "diffusion_60": "diffusion + proximal step|60"}


def goals(entry: dict, *, seed: int = 0) -> dict:
    """The issue's first goal on one setting, as paired differences on the test images with verdicts: the chosen
    CM row within 1 dB of the diffusion prior at 60 evaluations (difference >= -1), and >= 2 dB above the diffusion
    prior at the same budget and above Tweedie + proximal step."""
    from studies.statistics import paired_difference

    rows, psnr_of = goal_rows(entry), (lambda label: entry["rows"][label]["psnr"])
    out = {"rows": rows}
    for name, other, threshold in (("vs_diffusion_60", "diffusion_60", -1.0), ("vs_same_nfe", "same_nfe", 2.0),
                                   ("vs_tweedie", "tweedie", 2.0)):
        comparison = paired_difference(psnr_of(rows["cm"]), psnr_of(rows[other]), seed=seed)
        out[name] = {"comparison": comparison, "threshold": threshold, "verdict": verdict(comparison, threshold)}
    return out


def ect_step_seconds(card: dict, *, steps: int = 4, seed: int = 0) -> float:
    """Seconds per step of the card's consistency tuning on this machine's CPU (its batch size, network and loss),
    timed over ``steps`` steps after one untimed warm-up step, starting from the prior the card names."""
    import time

    from recon.models.checkpoints import build_model, verified_weights
    from recon.models.checkpoints import resolve as resolve_checkpoint
    from recon.training import ECTLoss, TrainConfig, TrainState, train_step

    model = build_model("consistency", card["config"])
    init = resolve_checkpoint(card["config"]["data"])
    model.net.load_state_dict({k: v.float() for k, v in verified_weights(init, recon.models.load_card(init)).items()})
    model.net.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(seed)
    state = TrainState.create(model, torch.optim.Adam(model.net.parameters(), lr=card["config"]["lr"]), generator)
    loss, config = ECTLoss(**{k: v for k, v in card["loss"].items() if k != "name"}), TrainConfig(steps=steps + 1)
    images = recon.data.head_ct_phantoms(card["config"]["batch"], card["config"]["image_size"], "train", seed)
    train_step(state, loss, images, config)  # warm-up: first-call overheads
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, loss, images, config)
    return (time.perf_counter() - start) / steps
