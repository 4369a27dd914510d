"""What changed when the brain tasks moved from the ``brain`` prior (which memorised its training slabs) to
``brain_synth`` (trained on synthetic heads): the MRI rows of the evaluation, real-scan and shift studies, before
(the superseded results files, ``results/superseded/*_brain_prior.json``) and after (today's; for the real scans
:data:`REAL_SCANS_AFTER`), paired on the same test images, seeds and measurements.

Each row: the study, the setting, the method, the mean PSNR before and after, and the paired difference (after minus
before) with its 95 % bootstrap interval over images (:func:`studies.statistics.paired_difference`). Classical rows
(zero-filled, TV) appear too: their difference is 0, which shows the pairing holds.
"""

from __future__ import annotations

import statistics

from studies.statistics import paired_difference

SUPERSEDED = "results/superseded/{study}_brain_prior.json"
# The real-scan study after the prior changed and before its tuning did (6 random optuna trials on 4 validation
# images, 3 people per modality): the pair that differs only in the prior. Today's real_scans.json tunes on the
# protocol's grid over more people, so it is not paired with the superseded file. (Its figure record names arrays that
# were overwritten since.)
REAL_SCANS_AFTER = "results/superseded/real_scans_random_search.json"


def row(study: str, setting: str, method: str, before: list[float], after: list[float]) -> dict:
    if len(before) != len(after):
        raise ValueError(f"{study} {setting} {method}: {len(before)} images before, {len(after)} after; not paired.")
    change = paired_difference(after, before)
    return {"study": study, "setting": setting, "method": method, "n": len(after),
            "before": round(statistics.fmean(before), 2), "after": round(statistics.fmean(after), 2),
            "change": round(change.mean, 2), "low": round(change.low, 2), "high": round(change.high, 2),
            "verdict": change.verdict}


def evaluation_rows(before: dict, after: dict) -> list[dict]:
    """Every MRI task's rows of the evaluation study (``results`` parts of the two files)."""
    old = {e["task"]: {r["method"]: r["psnr"] for r in e["rows"]} for e in before["tasks"]}
    out = []
    for entry in after["tasks"]:
        if entry["task"].startswith("MRI"):
            out += [row("evaluation", entry["task"], r["method"], old[entry["task"]][r["method"]], r["psnr"])
                    for r in entry["rows"]]
    return out


def real_scan_rows(before: dict, after: dict) -> list[dict]:
    """The real MR slices: each prior method with the brain prior (``shipped prior, m`` before) against the same
    method with ``brain_synth`` (``synthetic prior, m`` after), and TV as the unchanged check."""
    out = []
    for old, new in zip(before["mri"], after["mri"]):
        for label, values in new["rows"].items():
            if label.startswith("synthetic prior"):
                shipped = label.replace("synthetic prior", "shipped prior")
                out.append(row("real scans", new["noise"], label.replace("synthetic prior, ", ""),
                               old["rows"][shipped]["psnr"], values["psnr"]))
        tv = "TV (tuned on brain validation)"
        out.append(row("real scans", new["noise"], tv, old["rows"][tv]["psnr"], new["rows"][tv]["psnr"]))
    return out


def shift_rows(before: dict, after: dict) -> list[dict]:
    """Every brain point of the shift grid: the prior's rows (λ carried over, λ tuned there)."""
    old = {(p["setting"], p["noise"]): p["rows"] for p in before["points"]}
    out = []
    for point in after["points"]:
        if point["dataset"] != "brain":
            continue
        rows = old[(point["setting"], point["noise"])]
        out += [row("shift", f"{point['setting']} {point['noise']}", label, rows[label]["psnr"], values["psnr"])
                for label, values in point["rows"].items() if label.startswith("prior")]
    return out


def per_person(result: dict, methods: list[str], reference: str) -> list[dict]:
    """Mean PSNR per person (the unit the real-scan study's slices belong to) of each of ``methods`` and of
    ``reference`` in one condition of the real-scan study. No method is picked per person: each is reported as run."""
    out = []
    for person in dict.fromkeys(result["subjects"]):
        index = [i for i, s in enumerate(result["subjects"]) if s == person]
        entry = {"person": person, "slices": len(index)}
        entry.update({m: round(statistics.fmean(result["rows"][m]["psnr"][i] for i in index), 2)
                      for m in [reference, *methods]})
        out.append(entry)
    return out


def people_reached(rows: list[dict], method: str, reference: str) -> int:
    """How many people ``method`` reached ``reference`` for (mean PSNR at least as high), from :func:`per_person`."""
    return sum(r[method] >= r[reference] for r in rows)
