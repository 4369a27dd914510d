"""The data card of a folder of images, which training saves beside the checkpoint: counts per split, sizes, the
intensity in source units, the rules applied, hashed patient identifiers, what was left out and why, and the symbolic
links followed."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recon.data.readers import SPLIT_NAMES, Read, Slice, given_splits
from recon.data.split_check import LEAK_TOLERANCE, hashed, pixel_hash

if TYPE_CHECKING:
    from recon.data.folder import FolderOptions

PATIENT_RULES = {"auto": "DICOM PatientID; else the first sub-folder; else", "folder": "the first sub-folder; else",
                 "name": ""}


def source_summary(slices: list[Slice]) -> dict:
    """Shapes, intensity (min, 1st and 99th percentiles, max) in source units and pixel spacing of the slices."""
    values = np.concatenate([s.pixels.ravel()[:: max(1, s.pixels.size // 4096)] for s in slices])
    spacings = [min(s.spacing) for s in slices if s.spacing]
    return {"shapes": dict(Counter("x".join(map(str, s.pixels.shape)) for s in slices).most_common()),
            "intensity": {"min": float(min(s.pixels.min() for s in slices)), "p1": float(np.percentile(values, 1)),
                          "p99": float(np.percentile(values, 99)), "max": float(max(s.pixels.max() for s in slices))},
            "pixel_spacing_mm": [min(spacings), max(spacings)] if spacings else None}


def split_counts(slices: list[Slice], split_of: list[str]) -> tuple[dict, dict]:
    """Per split: the counts of patients, volumes and slices, and the hashed patient identifiers."""
    counts, patients = {}, {}
    for name in SPLIT_NAMES:
        members = [s for s, split in zip(slices, split_of) if split == name]
        patients[name] = sorted({hashed(s.patient) for s in members})
        counts[name] = {"patients": len(patients[name]), "volumes": len({s.volume for s in members}),
                        "slices": len(members)}
    return counts, patients


def split_rule(root: Path, options: FolderOptions) -> str:
    if given_splits(root):
        return "given by the train/, val/ and test/ sub-folders"
    return (f"by patient: each patient's draw from sha256(seed:patient) below {options.test_fraction:g} test, below "
            f"{options.test_fraction + options.val_fraction:g} validation, else train (at least one each)")


def data_card(root: Path, read: Read, split_of: list[str], modality: str, size: int, seed: int,
              options: FolderOptions, duplicates: int) -> dict:
    """The card of the slices ``read`` kept (each in its split) and the files it left out."""
    slices = read.slices
    counts, patients = split_counts(slices, split_of)
    fingerprint = hashlib.sha256("".join(sorted(s.source + pixel_hash(s.pixels) for s in slices)).encode())
    by_file = {k["file"]: k["reason"] for k in read.skipped}
    return {"root": str(root), "fingerprint": fingerprint.hexdigest(), "modality": modality,
            "intensity": options.intensity.describe(modality), "size": size, "seed": seed,
            "split_rule": split_rule(root, options),
            "options": {**dataclasses.asdict(options), "intensity": dataclasses.asdict(options.intensity)},
            "patient_rule": PATIENT_RULES[options.patient_from] + f" the file name's match of "
                            f"{options.patient_pattern!r}", "counts": counts, "source": source_summary(slices),
            "patients_sha256_12": patients, "duplicates_dropped": duplicates,
            "skipped": [{"file": f, "reason": r} for f, r in sorted(by_file.items())], "links_followed": read.links,
            "preprocessing": "intensity rule, centred on a square of zeros, resized with anti-aliasing (bilinear)",
            "leak_check": "no patient in two splits; no two images of different splits (after the preprocessing) "
                          f"within {LEAK_TOLERANCE:.5f} of each other at every pixel, blank images aside"}
