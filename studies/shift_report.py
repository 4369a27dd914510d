"""Reading the shift experiment (``results/shift.json``) for the shift chapter: tables of mean PSNR, the cost of each
shift as a paired difference with its interval, the issue's goals, the prior's posterior spread against its error.

Every function takes the experiment's ``results`` dict and returns plain rows (lists of dicts) or numbers, so the
notebook only turns them into tables and figures.
"""

from __future__ import annotations

import numpy as np

from studies.consistency_study import verdict
from studies.shift_study import FAMILY, TRAINED_AT
from studies.statistics import mean_se, paired_difference

PRIOR, PRIOR_HERE = "prior, λ carried over", "prior, λ tuned here"
NETS = ("network (single)", "network (family)", "network (oracle)")


def label(point: dict) -> str:
    """A point's name in tables: its setting, and its noise where there is any."""
    return point["setting"] + ("" if point["noise"] == "noise-free" else f" ({point['noise']})")


def in_distribution(point: dict) -> bool:
    """Whether the point is the networks' (and λ's) training setting, noise-free."""
    return point["setting"] == TRAINED_AT[point["dataset"]] and point["noise"] == "noise-free"


def in_family(point: dict) -> bool:
    """Whether the family network was trained at the point's setting (noise-free points only: it saw no noise)."""
    return point["noise"] == "noise-free" and point["setting"] in FAMILY[point["dataset"]]


def means(results: dict) -> list[dict]:
    """One row per grid point: axis, value, whether it is the training setting or one of the family network's, and
    every method's mean PSNR over the test images."""
    return [{"data": p["dataset"], "axis": p["axis"], "value": p["value"], "setting": label(p),
             "in-distribution": in_distribution(p), "in family": in_family(p),
             **{k: float(np.mean(r["psnr"])) for k, r in p["rows"].items()}}
            for p in results["points"]]


def curve(results: dict, axis: str, row: str) -> tuple[list, list, list]:
    """``(values, mean PSNR, standard error)`` of one method along one axis of the grid (points lacking it skipped)."""
    points = sorted((p for p in results["points"] if p["axis"] == axis and row in p["rows"]), key=lambda p: p["value"])
    stats = [mean_se(p["rows"][row]["psnr"]) for p in points]
    return [p["value"] for p in points], [m for m, _ in stats], [s for _, s in stats]


def training_point(results: dict, dataset: str, noise: str = "noise-free") -> dict:
    """The grid point at the training setting of ``dataset`` with the given noise."""
    return next(p for p in results["points"] if p["dataset"] == dataset and p["setting"] == TRAINED_AT[dataset]
                and p["noise"] == noise)


def costs(results: dict, *, seed: int = 0) -> list[dict]:
    """The cost of each shift, paired over the test images (positive: what the shift cost). The prior: λ tuned here
    minus λ carried over. A network: the oracle minus it, where an oracle ships. Both networks also against the prior,
    relative to the training setting: ``(prior − network)`` here minus ``(prior − network)`` at the training setting,
    per image — the network's loss beyond the prior's (λ carried over), which also exists where no oracle does."""
    out = []
    for p in results["points"]:
        rows, home = p["rows"], training_point(results, p["dataset"])["rows"]
        entry = {"data": p["dataset"], "axis": p["axis"], "setting": label(p), "in family": in_family(p),
                 "prior": paired_difference(rows[PRIOR_HERE]["psnr"], rows[PRIOR]["psnr"], seed=seed)}
        for net in NETS[:2]:
            if net in rows and "network (oracle)" in rows:
                entry[f"{net} vs oracle"] = paired_difference(rows["network (oracle)"]["psnr"], rows[net]["psnr"],
                                                              seed=seed)
            if net in rows and net in home:
                gap_here = np.subtract(rows[PRIOR]["psnr"], rows[net]["psnr"])
                gap_home = np.subtract(home[PRIOR]["psnr"], home[net]["psnr"])
                entry[f"{net} vs prior"] = paired_difference(gap_here, gap_home, seed=seed)
        out.append(entry)
    return out


def formatted(comparison) -> str:
    """``+1.23 [+0.98, +1.51]``: a paired difference with its interval."""
    return f"{comparison.mean:+.2f} [{comparison.low:+.2f}, {comparison.high:+.2f}]"


def goals(results: dict, *, seed: int = 0) -> dict:
    """The issue's goals, each as counts of verdicts over the grid's shifted points ("met" only where the whole 95 %
    interval clears the threshold): the networks win in-distribution; the prior loses ≤ 1 dB to its own level (λ
    tuned there); the single-setting network loses ≥ 3 dB to its oracle (and, everywhere, to the prior); and how much
    of the single network's loss the family network recovers where oracles ship."""
    pairs = [(c, p) for c, p in zip(costs(results, seed=seed), results["points"]) if not in_distribution(p)]
    out = {"in_distribution": {}}
    for dataset in TRAINED_AT:
        rows = training_point(results, dataset)["rows"]
        out["in_distribution"][dataset] = paired_difference(rows["network (single)"]["psnr"], rows[PRIOR]["psnr"],
                                                            seed=seed)
    # a point at the training setting with the source's noise shifts nothing for the prior: left out of its count
    out["prior_within_1db"] = count(verdict(_negated(c["prior"]), -1.0) for c, p in pairs if not p.get("source"))
    for key in ("network (single) vs oracle", "network (single) vs prior"):
        out[key] = count(verdict(c[key], 3.0) for c, _ in pairs if key in c)
    for where, keep in (("outside its family", False), ("inside its family", True)):
        out[f"network (family) vs prior, {where}"] = count(verdict(c["network (family) vs prior"], 3.0)
                                                           for c, p in pairs if in_family(p) == keep
                                                           and "network (family) vs prior" in c)
    out["family_recovers"] = [{"setting": c["setting"], "in family": c["in family"],
                               **recovered(p["rows"], seed=seed)} for c, p in pairs if "network (family) vs oracle" in c]
    return out


def _negated(comparison):
    """``-d`` of a paired comparison: the verdict of "cost ≤ 1" is that of "−cost ≥ −1"."""
    return type(comparison)(-comparison.mean, -comparison.high, -comparison.low, comparison.n, comparison.level)


def count(verdicts) -> dict[str, int]:
    """``{"met": .., "undecided": .., "not met": ..}`` of a sequence of verdicts."""
    verdicts = list(verdicts)
    return {v: verdicts.count(v) for v in ("met", "undecided", "not met")}


def recovered(rows: dict, *, seed: int = 0, n_resamples: int = 9999) -> dict:
    """The share of the single network's loss to the oracle that the family network does not have,
    ``1 − mean(oracle − family) / mean(oracle − single)`` (1: all recovered), with a 95 % percentile bootstrap
    interval over the images (resampled in pairs); NaN where the single network lost nothing on average."""
    oracle, single, family = (np.asarray(rows[f"network ({k})"]["psnr"]) for k in ("oracle", "single", "family"))

    def share(index):
        lost = (oracle[index] - single[index]).mean()
        return 1 - (oracle[index] - family[index]).mean() / lost if lost > 0 else np.nan

    rng = np.random.default_rng(seed)
    draws = np.array([share(rng.integers(0, len(oracle), len(oracle))) for _ in range(n_resamples)])
    low, high = np.nanpercentile(draws, [2.5, 97.5]) if np.isfinite(draws).any() else (np.nan, np.nan)
    return {"fraction": float(share(np.arange(len(oracle)))), "low": float(low), "high": float(high)}


def spread_rows(results: dict) -> list[dict]:
    """Per grid point, the prior's posterior (λ carried over, on the spread images): the mean per-pixel standard
    deviation, the posterior mean's RMSE, its PSNR beside a single sample's, 90 % coverage, corr(spread, error)."""
    out = []
    for p in results["points"]:
        s = p["spread"]
        out.append({"data": p["dataset"], "axis": p["axis"], "setting": label(p), "spread (std)": np.mean(s["std"]),
                    "error (RMSE of mean)": np.mean(s["rmse"]), "posterior mean PSNR": np.mean(s["mean_psnr"]),
                    "single sample PSNR": np.mean(s["sample_psnr"]), "coverage (90 %)": np.mean(s["coverage"]),
                    "corr(spread, error)": np.mean(s["correlation"])})
    return out


def anatomy_rows(results: dict) -> list[dict]:
    """The anatomy panel: one row per image set and method, mean PSNR and SSIM (and the number of images)."""
    return [{"images": images, "method": method, "n": len(r["psnr"]), "PSNR": float(np.mean(r["psnr"])),
             "SSIM": float(np.mean(r["ssim"]))}
            for images, by_method in results["anatomy"].items() for method, r in by_method.items()]
