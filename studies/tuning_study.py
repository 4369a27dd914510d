"""One source of tuned values, and how much a tuned value can be trusted (``results/tuning.json``).

For every (setting, method, budget, prior) the method's free parameters are swept over the protocol's grid
(:func:`recon.tuning.search_plan` with ``search="protocol"``: 13 points for one parameter, 7 x 7 for two), each grid
point run on ``draws x n_val`` validation images and on the setting's test images. The sweep gives at once:

* the **sensitivity curve**: mean validation PSNR against the parameter, with the test curve beside it;
* the **tuned value**: the grid point with the best mean PSNR over all validation images (the value every chapter
  reads; no chapter re-tunes it);
* its **stability**: the point each of ``draws`` disjoint validation draws would choose, or with one draw the point
  each of :data:`BOOTSTRAP` resamples of the validation images (with replacement) would choose, and the test PSNR of
  each such choice (read from the test curve, so no extra run);
* the **oracle**: the grid point best on test images, labelled as such, to say what validation-only tuning costs.

Test images never choose the tuned value. The sweep is what a TPE study would spend its trials on, spent where a grid
finds a peaked optimum.
"""

from __future__ import annotations

import itertools
from statistics import fmean

import numpy as np

from recon.data.offgrid import fine_and_truth
from recon.methods import METHODS
from recon.operators.noise import simulate
from recon.tuning import Tuned, search_plan
from studies.protocol import Choice, Measured, Task, measured, reconstruct_row


def grid_points(method: str, fixed: dict) -> list[dict]:
    """Every point of the protocol's grid over ``method``'s free parameters given ``fixed`` (one point, ``{}``, for a
    method with nothing to tune); a method with more than two free parameters has no grid (TPE tunes it)."""
    plan = search_plan(METHODS[method].space_for(fixed), "protocol")
    if plan.kind == "none":
        return [{}]
    if plan.kind != "grid":
        raise ValueError(f"{method} with {fixed} has more than two free parameters; the sweep takes one or two (fix "
                         "the others, or tune it with recon.tuning.tune_method(search='protocol')).")
    names = list(plan.grid)
    return [dict(zip(names, values)) for values in itertools.product(*plan.grid.values())]


def validation(task: Task, n: int, seed: int) -> Measured:
    """The task's first ``n`` validation images, measured as its test images are (off-grid, the task's noise)."""
    truth, fine = fine_and_truth(task.dataset, n, task.operator.image_shape[0], "val", seed)
    return Measured(truth, simulate(task.operator, truth, task.noise, seed, fine))


BOOTSTRAP = 200  # resamples of the validation images for a sweep's stability when it has one draw


def best_point(val_psnr: list[list[float]], images: slice | list[int] = slice(None)) -> int:
    """The grid point with the best mean validation PSNR over ``images`` (a slice or a list of indices, repeats
    allowed; ties: the first)."""
    picked = [[p[i] for i in images] if isinstance(images, list) else p[images] for p in val_psnr]
    means = [sum(p) / len(p) for p in picked]
    return max(range(len(means)), key=means.__getitem__)


def choices(val_psnr: list[list[float]], draws: int, n_val: int, seed: int) -> list[int]:
    """The point each disjoint draw of ``n_val`` validation images chooses; with one draw, the point each of
    :data:`BOOTSTRAP` resamples (with replacement, seeded) chooses."""
    if draws > 1:
        return [best_point(val_psnr, slice(d * n_val, (d + 1) * n_val)) for d in range(draws)]
    rng = np.random.default_rng(seed)
    return [best_point(val_psnr, rng.integers(0, n_val, n_val).tolist()) for _ in range(BOOTSTRAP)]


def sweep(task: Task, method: str, fixed: dict, prior, *, draws: int, n_val: int, n_images: int, seed: int,
          device="cpu", done: dict | None = None, save=None) -> dict:
    """The sensitivity sweep of ``method`` (``fixed`` options) on ``task``: per grid point its options, per-image
    validation PSNR and test row; the pooled choice, each draw's choice and the oracle (indices into the points).

    A sweep can take hours on a CPU, so it resumes inside itself: ``done`` holds the points an earlier run finished
    (``{"val_psnr": [...], "rows": [...]}``, as ``save`` received them), and ``save(progress)`` is called after every
    point with the points finished so far."""
    points = grid_points(method, fixed)
    val, test = validation(task, draws * n_val, seed), measured(task, n_images, seed)
    val_psnr, rows = list((done or {}).get("val_psnr", [])), list((done or {}).get("rows", []))
    if len(val_psnr) != len(rows) or len(rows) > len(points):
        raise ValueError(f"the resumed sweep of {method} holds {len(val_psnr)} validation and {len(rows)} test results "
                         f"for {len(points)} grid points; delete its 'in_progress' entry to start it again.")
    for point in points[len(rows):]:
        choice = Choice(method, {**fixed, **point}, prior)
        val_psnr.append(reconstruct_row(val, choice, seed=seed, device=device)[1].psnr)
        rows.append(reconstruct_row(test, choice, seed=seed, device=device)[1])
        print(f"  {method} {point}: val {sum(val_psnr[-1]) / len(val_psnr[-1]):.2f}, "
              f"test {sum(_psnr(rows[-1])) / n_images:.2f} dB", flush=True)
        if save is not None:
            save({"val_psnr": val_psnr, "rows": rows})
    test_psnr = [_psnr(r) for r in rows]
    return {"method": method, "fixed": fixed, "points": points, "val_psnr": val_psnr, "rows": rows,
            "chosen": best_point(val_psnr),
            "draws": choices(val_psnr, draws, n_val, seed),
            "oracle": best_point(test_psnr)}


def _psnr(row) -> list[float]:
    """A test row's per-image PSNR, whether a fresh :class:`~studies.protocol.Row` or one resumed from JSON."""
    return row["psnr"] if isinstance(row, dict) else row.psnr


def planned(settings: dict, priors: dict | None = None) -> list[tuple[Task, str, Choice]]:
    """Every (task, label, choice) the study sweeps under its ``settings`` (the experiment's options: ``nfe``,
    ``methods``, ``seed``), in the order it sweeps them; ``priors`` (dataset -> prior) is None to count them."""
    from studies import protocol

    return [(task, label, choice) for task in protocol.tasks(seed=settings["seed"])
            for label, choice in protocol.candidates(task, settings["nfe"], (priors or {}).get(task.dataset)).items()
            if settings["methods"] is None or label in settings["methods"]]


# Reading the stored study for the chapters.


def tuned_row(entry: dict) -> dict:
    """The test row of a stored sweep at its tuned (pooled validation) value."""
    return entry["rows"][entry["chosen"]]


def tuned_of(entry: dict, seed: int) -> Tuned:
    """A finished sweep as the protocol's tuning result (search "grid"), so that a study can run with the sweep's
    value: the pooled validation choice and its mean validation PSNR, every grid point as a trial, and the parameters
    whose choice sits on a bound of their range."""
    space = METHODS[entry["method"]].space_for(entry["fixed"])
    best = entry["points"][entry["chosen"]]
    trials = [{**point, "value": fmean(val)} for point, val in zip(entry["points"], entry["val_psnr"])]
    at_bound = [name for name, rng in space.items() if rng.at_bound(best[name])]
    return Tuned(entry["method"], dict(entry["fixed"]), dict(best), trials[entry["chosen"]]["value"], trials, at_bound,
                 seed, "grid")


def draw_spread(entry: dict) -> tuple[float, float]:
    """The lowest and highest mean test PSNR over the choices of the validation draws."""
    means = [sum(entry["rows"][i]["psnr"]) / len(entry["rows"][i]["psnr"]) for i in entry["draws"]]
    return min(means), max(means)


NEAR_DB = 0.5  # a grid point "near the optimum": its mean validation PSNR within this of the best
STABLE_DB = 0.3  # a stable choice: the test PSNR of the draws' (or resamples') picks spans at most this


def load_sweeps(path) -> dict:
    """The finished sweeps of the tuning study, read from its results file (``results/tuning.json``) or, while the
    study is still running, from its partial file (``results/tuning.partial.json``): ``{"settings", "sweeps",
    "provenance"}`` plus ``"running"``, the (task, method) being swept, or None. A partial file has no single
    provenance (it can span sessions and machines): each sweep there carries its own ``record``."""
    import json
    from pathlib import Path

    data = json.loads(Path(path).read_text())
    if set(data) == {"provenance", "results"}:
        results, provenance = data["results"], data["provenance"]
    elif "settings" in data and "sweeps" in data:
        results, provenance = data, None
    else:
        raise ValueError(f"{path} is neither the tuning study's results file nor its partial file (keys "
                         f"{sorted(data)}); write it with `python scripts/make_results.py tuning`.")
    running = results.get("in_progress")
    return {"settings": results["settings"], "sweeps": results["sweeps"], "provenance": provenance,
            "running": (running["task"], running["label"]) if running else None}


def summary(entry: dict, near: float = NEAR_DB) -> dict:
    """One finished sweep in numbers: its parameter, the tuned (validation) value and its test PSNR, the oracle's,
    the spread of test PSNR over the validation draws' (or resamples') choices, and how sensitive the method is
    (the range and the number of grid points whose mean validation PSNR lies within ``near`` dB of the best, the fall
    from the best to the worst grid point, and ``(value, test PSNR)`` at the grid points ``"below"`` and ``"above"``
    the tuned one, where they exist); with the run that finished the sweep (``record``, None before sweeps kept one)."""
    space = METHODS[entry["method"]].space_for(entry["fixed"])
    if len(space) != 1:
        raise ValueError(f"summary takes a one-parameter sweep; {entry['method']} sweeps {sorted(space)}.")
    (name, rng), = space.items()
    values = [p[name] for p in entry["points"]]
    val = [fmean(p) for p in entry["val_psnr"]]
    test = [fmean(_psnr(r)) for r in entry["rows"]]
    chosen, oracle = entry["chosen"], entry["oracle"]
    near_values = [v for v, m in zip(values, val) if m >= val[chosen] - near]
    low, high = draw_spread(entry)
    return {"task": entry["task"], "label": entry["label"], "method": entry["method"], "parameter": name,
            "log": rng.log, "values": values, "val": val, "test": test,
            "chosen": values[chosen], "test_at_chosen": test[chosen], "oracle": values[oracle],
            "test_at_oracle": test[oracle], "draw_low": low, "draw_high": high,
            "near": (min(near_values), max(near_values)), "near_points": len(near_values),
            "fall": val[chosen] - min(val),
            "neighbours": {side: (values[i], test[i]) for side, i in (("below", chosen - 1), ("above", chosen + 1))
                           if 0 <= i < len(values)},
            "record": entry.get("record")}
