"""The solvers chapter's study (``results/solvers.json``): today's training-free solvers (:mod:`recon.solvers`:
DiffPIR, DDS, RED-diff, DAPS) beside Song et al.'s step (or the DDRM rule) and DPS, on every protocol task.

Every method is tuned alike (:func:`studies.protocol.tune_all`: the same validation images, trial budget and seeds)
at two budgets, a few-step one and the evaluation table's; at 8 network evaluations the re-noising sampler of the
consistency chapter, run over the diffusion prior, joins them. Each tested budget of the curve uses the values tuned
at the nearest tuned budget (in log NFE); the table's proximal and DPS values are the evaluation's own
(``results/evaluation.json``: one stored tuned value per setting), and so are their rows at that budget.
"""

from __future__ import annotations

import math

from recon.methods import METHODS
from recon.tuning import Tuned
from studies.protocol import Choice, Task, budget_options, evaluate_all, measured, tune_all

SOLVERS = ("diffpir", "dds", "red_diff", "daps")
FEW_STEP = "consistency"  # the re-noising sampler over the diffusion prior (the consistency chapter's few-step answer)


def nearest_budget(nfe: int, budgets) -> int:
    """The tuned budget nearest ``nfe`` in log NFE (ties go to the smaller budget)."""
    return min(sorted(budgets), key=lambda b: abs(math.log(nfe / b)))


def methods_at(task: Task, budget: int, few_step: int) -> list[str]:
    """The methods tuned at ``budget``: the task's score methods and the solvers, and the few-step sampler at the
    few-step budget."""
    return [*task.score_methods(), *SOLVERS, *([FEW_STEP] if budget == few_step else [])]


def tune_setting(task: Task, prior, budget: int, *, few_step: int, table_nfe: int, stored: dict[str, Tuned],
                 n_val: int, n_trials: int, seed: int, device="cpu", search: str = "tpe",
                 on_tuned=None) -> dict[str, Tuned]:
    """``label -> Tuned`` of every method of the setting at ``budget``; ``stored`` (the evaluation's tuned values,
    and those a resumed run had finished) are kept, not retuned; ``search`` is :func:`recon.tuning.search_plan`'s;
    ``on_tuned(label, tuned)`` after each fresh tuning. A study at the table's budget is named as the evaluation
    names its studies; one at another budget carries the budget in its name."""
    todo = {m: Choice(m, budget_options(m, budget), prior) for m in methods_at(task, budget, few_step)
            if m not in stored}
    tuned = tune_all(task, todo, n_val=n_val, n_trials=n_trials, seed=seed, device=device, search=search,
                     name=None if budget == table_nfe else (lambda label: f"{task.name}|{task.noise_name}|{label}|{budget} NFE"),
                     on_tuned=on_tuned)
    return {**stored, **tuned}


def curve_rows(task: Task, prior, tuned: dict[int, dict[str, Tuned]], *, nfes, n_images: int, seed: int,
               device="cpu", skip: dict[int, set] | None = None) -> list[dict]:
    """Every tuned method on the task's off-grid test images at every budget of ``nfes``, with the values tuned at
    the nearest tuned budget; ``skip[nfe]`` lists methods whose rows at ``nfe`` are stored elsewhere. One entry per
    budget: ``{"nfe", "tuned_at", "rows": {label: Row}}``."""
    data = measured(task, n_images, seed)
    out = []
    for nfe in nfes:
        budget = nearest_budget(nfe, tuned)
        choices = {label: Choice(t.method, {**t.options, **METHODS[t.method].budget_options(nfe, t.fixed)}, prior)
                   for label, t in tuned[budget].items() if label not in (skip or {}).get(nfe, set())}
        print(f" {task.key} at {nfe} NFE (tuned at {budget})", flush=True)
        out.append({"nfe": nfe, "tuned_at": budget, "rows": evaluate_all(data, choices, seed=seed, device=device)})
    return out


# Reading the stored study (results/solvers.json) for the chapter: the rows of a budget, the curves, the choice a
# reader can make without test images, and the goals of the solvers issue.


def rows_at(entry: dict, nfe: int) -> dict[str, dict]:
    """``label -> row`` of a stored task entry at ``nfe``."""
    return next(point["rows"] for point in entry["curve"] if point["nfe"] == nfe)


def curve(entry: dict, label: str, metric: str = "psnr") -> tuple[list[int], list[list[float]]]:
    """The budgets at which ``label`` ran and its per-image ``metric`` at each."""
    points = [p for p in entry["curve"] if label in p["rows"]]
    return [p["nfe"] for p in points], [p["rows"][label][metric] for p in points]


def chosen(entry: dict, budget: int, among=None) -> str:
    """The method a reader would pick at ``budget`` without test images: the best mean validation PSNR (the tuning's
    own score) of the methods tuned there (or of those ``among`` them)."""
    tuned = entry["tuned"][str(budget)]
    return max([label for label in tuned if among is None or label in among], key=lambda label: tuned[label]["value"])


def mean(values) -> float:
    return sum(values) / len(values)
