"""Today's solvers on the real scans, person by person (the solvers issue's real-scan part; the evidence issue's unit).

The real head-CT and brain-MR slices of :mod:`recon.data.real_scans` (people no prior saw) are measured off the
reconstruction grid at the protocol's CT 16-view and MRI 4x settings, noise-free and with the protocol's noise, and
reconstructed by every method of the solvers chapter **with the values stored for that setting** (one source of tuned
values: the evaluation's TV, Song et al.'s step or the DDRM rule and DPS, ``results/evaluation.json``; the solvers'
values at the table's budget, ``results/solvers.json``), all tuned on the setting's validation phantoms, never on a
real scan. Each solver also runs with a **warm start** (Chung et al.'s CCDF, CVPR 2022: from ``A^+ y`` plus noise at
``start_sigma``), whose level alone is tuned on the same validation phantoms on the protocol's 13-point grid, the
solver's other values held at their stored ones. The solver a reader would pick is the best on validation among the
eight (four solvers, cold and warm). Rows keep per-slice scores and each slice's person, so the chapter can state every
verdict per person.
"""

from __future__ import annotations

from recon.solvers import START_SIGMA
from recon.tuning import GRID_POINTS, Tuned
from studies.protocol import Choice, Measured, Task, evaluate_all, tune_all
from studies.solver_study import SOLVERS

# modality -> the protocol setting its real slices are measured at (the settings the real-scan chapter uses)
SETTINGS = {"ct": "CT, 16 views", "mri": "MRI, 4x"}
WARM = " (warm start)"


def stored_tuned(task: Task, evaluation: dict, solvers: dict, nfe: int) -> dict[str, Tuned]:
    """``label -> Tuned`` of the setting's stored values: TV, the score methods (the evaluation's) and the solvers at
    ``nfe`` (the solvers study's)."""
    from studies.results import tuned_from_json

    out = {m: tuned_from_json(evaluation["tuned"][m]) for m in ["tv", *task.score_methods()]}
    out.update({m: tuned_from_json(solvers["tuned"][str(nfe)][m]) for m in SOLVERS})
    return out


def tune_warm_starts(task: Task, stored: dict[str, Tuned], prior, *, n_val: int, seed: int,
                     device="cpu") -> dict[str, Tuned]:
    """Each solver's warm-start level tuned on the task's validation images on the protocol grid, its other values
    fixed at the stored ones: ``"<solver> (warm start)" -> Tuned``."""
    choices = {f"{m}{WARM}": Choice(m, stored[m].options, prior) for m in SOLVERS}
    return tune_all(task, choices, n_val=n_val, n_trials=GRID_POINTS[1], seed=seed, device=device,
                    space={"start_sigma": START_SIGMA}, search="grid")


def pick(tuned: dict[str, Tuned]) -> str:
    """The solver a reader picks without test images: the best mean validation PSNR among the solvers, cold or warm."""
    return max((label for label in tuned if label.removesuffix(WARM) in SOLVERS), key=lambda label: tuned[label].value)


def real_condition(task: Task, data: Measured, scans: list, stored: dict[str, Tuned], prior, *, n_val: int,
                   seed: int, device="cpu") -> dict:
    """One setting on the real slices: the stored methods, the warm-started solvers, the classical inverse; the rows
    (per slice), the tuned values, the validation pick and each slice's person."""
    tuned = {**stored, **tune_warm_starts(task, stored, prior, n_val=n_val, seed=seed, device=device)}
    choices = {task.classical: Choice(task.classical, {})}
    choices.update({label: Choice.tuned(t, None if label == "tv" else prior) for label, t in tuned.items()})
    rows = evaluate_all(data, choices, seed=seed, device=device)
    return {**task.header(), "noise_std": data.measurement.noise_std, "images": [s.name for s in scans],
            "subjects": [s.subject for s in scans], "sources": [s.source for s in scans],
            "upsampled": [s.upsampled for s in scans], "rows": rows, "tuned": tuned, "pick": pick(tuned),
            "n_val": n_val}


# Reading the stored study (results/real_solvers.json) for the chapter: the unit is the person.


def per_person(entry: dict, label: str, metric: str = "psnr") -> dict[str, list[float]]:
    """``person -> per-slice metric`` of one stored row, people in the order of their first slice."""
    out: dict[str, list[float]] = {}
    for person, value in zip(entry["subjects"], entry["rows"][label][metric]):
        out.setdefault(person, []).append(value)
    return out


def person_difference(entry: dict, a: str, b: str) -> list[dict]:
    """Per person: the mean PSNR difference ``a - b`` over the person's slices, their count, and the paired interval
    over those slices where there are at least 3 (:func:`studies.statistics.paired_difference`; an interval over one
    person's slices, not over people)."""
    from studies.statistics import paired_difference

    first, second = per_person(entry, a), per_person(entry, b)
    out = []
    for person, x in first.items():
        y = second[person]
        diff = sum(p - q for p, q in zip(x, y)) / len(x)
        out.append({"person": person, "slices": len(x), "difference": diff,
                    "interval": paired_difference(x, y) if len(x) >= 3 else None})
    return out


def across_people(differences: list[dict]) -> dict:
    """How many people gain and lose, and the two-sided sign test over people (the unit; with n people the smallest
    possible p is ``2 / 2**n``, so five people can never reach p < 0.05)."""
    from scipy.stats import binomtest

    gains = sum(d["difference"] > 0 for d in differences)
    n = len(differences)
    return {"people": n, "gains": gains, "losses": n - gains, "sign_test_p": binomtest(gains, n).pvalue,
            "smallest_p": min(1.0, 2 / 2 ** n)}
