"""Results files: a heavy experiment runs once as a script and writes JSON with its provenance (command, code version,
date, hardware); a notebook reads the file and recomputes a small part live, asserting agreement (:func:`spot_check`).

    python scripts/make_results.py evaluation        # or `make results` for all of them

This module owns the border between typed results and the files: :func:`to_json` (the one place rows and tuned
values become JSON-ready dicts), :class:`Brief` (a tuned value as the head-to-head files keep it),
:func:`tuned_from_json` (back again), and the notebooks' helpers that name what a file holds (:func:`tuned_text`,
:func:`tag_of`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

from recon.files import atomic_write_text
from recon.provenance import ROOT
from recon.tuning import Tuned

RESULTS = ROOT / "results"


def save_results(name: str, results: dict, record: dict, folder: Path = RESULTS) -> Path:
    """Write ``folder/name.json``: ``{"provenance": record, "results": results}``, where ``record`` is
    :func:`recon.provenance.provenance` taken when the run started (so the code version is the one that ran)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    return atomic_write_text(path, json.dumps({"provenance": record, "results": results}, indent=1) + "\n")


def load_results(path: str | Path) -> dict:
    """Read a results file written by :func:`save_results`; a missing one names the command that makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no results file {path}; make it with `python scripts/make_results.py {path.stem}` "
                                "(or `make results`).")
    data = json.loads(path.read_text())
    if set(data) != {"provenance", "results"}:
        raise ValueError(f"{path} is not a results file (keys {sorted(data)}); rewrite it with scripts/make_results.py.")
    return data


def reused_part(path: str | Path, keep: Callable[[dict], bool], entries: Callable[[dict], list]) -> tuple[list, dict]:
    """The entries of a stored results file that a partial rerun keeps (``keep(entry)``; ``entries(results)`` lists
    them), and the record that says so: the file, the entries' count and the stored run's provenance."""
    stored = load_results(path)
    kept = [e for e in entries(stored["results"]) if keep(e)]
    return kept, {"from": str(path), "entries": len(kept), "provenance": stored["provenance"]}


def load_samples(results_path: str | Path, entry: Mapping):
    """The sample arrays a study saved beside its results file (``entry``: the result's ``samples`` record, with the
    file's name and SHA-256), refused when the file is not the one the study wrote."""
    import hashlib

    import numpy as np

    path = Path(results_path).parent / Path(entry["path"]).name
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
        raise ValueError(f"{path} is not the file the study wrote (its SHA-256 differs); rerun the study.")
    return np.load(path)


def spot_check(live: Mapping[str, float], stored: Mapping[str, float], *, tolerance: float, what: str) -> str:
    """Assert that every live value is within ``tolerance`` of the stored one; return a one-line summary.

    The tolerance covers the network's arithmetic (bf16 on some CPUs, fp32 on others) and nothing else: the live run
    repeats the stored run's images, seeds and settings."""
    missing = sorted(set(live) - set(stored))
    if missing:
        raise AssertionError(f"{what}: the results file has no entry for {missing}; regenerate it.")
    diffs = {k: abs(live[k] - stored[k]) for k in live}
    worst = max(diffs, key=diffs.get)
    if not diffs[worst] <= tolerance or any(math.isnan(v) for v in diffs.values()):
        rows = "; ".join(f"{k}: live {live[k]:.3f}, file {stored[k]:.3f}" for k in sorted(diffs, key=diffs.get)[-5:])
        raise AssertionError(f"{what}: live values differ from the results file by up to {diffs[worst]:.3f} "
                             f"(> {tolerance}); {rows}. Regenerate the file or find the change that moved them.")
    return f"{what}: {len(live)} values agree with the results file within {diffs[worst]:.3f} (tolerance {tolerance})"


def to_json(value):
    """``value`` with every dataclass in it (a :class:`studies.protocol.Row`, a :class:`recon.tuning.Tuned`, a
    :class:`Brief`) turned into its dict (its ``to_json()`` if it has one, else its fields), tuples into lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = value.to_json() if hasattr(value, "to_json") else {f.name: getattr(value, f.name)
                                                                      for f in dataclasses.fields(value)}
        return to_json(fields)
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def write_partial(path: str | Path | None, result: dict) -> None:
    """Write a run's result so far to ``path`` (None: nowhere), so that a long run cut short keeps what it finished."""
    if path:
        atomic_write_text(path, json.dumps(to_json(result)))  # a kill mid-write keeps the previous partial file


@dataclasses.dataclass
class Brief:
    """A tuned value as the head-to-head files keep it: without its trials, with the kind of prior it ran with
    (``"cm"`` or ``"diffusion"``, in the consistency study) and the budget whose tuning it borrows."""

    tuned: Tuned
    prior: str | None = None
    borrowed_from: int | None = None

    def to_json(self) -> dict:
        brief = {k: v for k, v in dataclasses.asdict(self.tuned).items() if k != "trials"}
        out = brief if self.prior is None else {"prior": self.prior, **brief}
        return out if self.borrowed_from is None else {**out, "borrowed_from": self.borrowed_from}


def tuned_from_json(entry: Mapping) -> Tuned:
    """The :class:`recon.tuning.Tuned` of a stored entry (a brief one has no trials)."""
    return Tuned(entry["method"], dict(entry["fixed"]), dict(entry["best"]), entry["value"], entry.get("trials", []),
                 list(entry["at_bound"]), entry["seed"], entry.get("search", "tpe"))


def tuned_text(tuned: Mapping, label: str) -> str:
    """A stored row's tuned values for a table, ``"lam = 0.42, snr = 0.17†"`` († on a bound of its range); ``""``
    for a row that was not tuned."""
    entry = tuned.get(label)
    if entry is None:
        return ""
    return ", ".join(f"{k} = {v:.3g}" + ("†" if k in entry["at_bound"] else "") for k, v in entry["best"].items())


def tag_of(entry: Mapping) -> str:
    """The glue name of a stored setting: ``CT_16_views``, ``MRI_8x_noisy``, ``MRI_8x_shift`` (anatomy shift)."""
    return (entry["name"].replace(", ", "_").replace(" ", "_") + ("" if entry["noise"] == "noise-free" else "_noisy")
            + ("_shift" if entry.get("split") == "test_shift" else ""))
