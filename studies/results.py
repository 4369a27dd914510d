"""Results files: a heavy experiment runs once as a script and writes JSON with its provenance (command, code version,
date, hardware); a notebook reads the file and recomputes a small part live, asserting agreement (:func:`spot_check`).

    python scripts/make_results.py evaluation        # or `make results` for all of them
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from recon.provenance import ROOT

RESULTS = ROOT / "results"


def save_results(name: str, results: dict, record: dict, folder: Path = RESULTS) -> Path:
    """Write ``folder/name.json``: ``{"provenance": record, "results": results}``, where ``record`` is
    :func:`recon.provenance.provenance` taken when the run started (so the code version is the one that ran)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"provenance": record, "results": results}, indent=1) + "\n")
    return path


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
