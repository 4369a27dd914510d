"""The split of a folder's slices by patient and the checks that keep it honest: duplicates dropped, each patient
drawn into train, validation or test by a hash of the seed and its identifier, and no patient or identical image in
two splits (a leak)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recon.data.readers import SPLIT_NAMES, DataFolderError, Slice, given_splits

if TYPE_CHECKING:
    from recon.data.folder import FolderOptions


def pixel_hash(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


def hashed(patient: str) -> str:
    """A patient identifier as the data card records it: a hash, never the identifier itself."""
    return hashlib.sha256(patient.encode()).hexdigest()[:12]


def drop_duplicates(slices: list[Slice]) -> tuple[list[Slice], int]:
    """Without the slices whose pixels repeat one of the same patient (one image stored twice, e.g. in two transfer
    syntaxes); the same image under two patients is left for :func:`check_no_leak` to catch."""
    seen, kept = set(), []
    for s in slices:
        key = (s.patient, s.split, pixel_hash(s.pixels))
        if key not in seen:
            seen.add(key)
            kept.append(s)
    return kept, len(slices) - len(kept)


def patient_draw(patient: str, seed: int) -> float:
    """A patient's uniform draw in [0, 1), from a hash of the seed and its identifier alone."""
    return int(hashlib.sha256(f"{seed}:{patient}".encode()).hexdigest()[:13], 16) / 16**13


def assign_splits(patients: list[str], seed: int, options: FolderOptions) -> dict[str, str]:
    """Patient -> split by the patient's own draw: below ``test_fraction`` test, below ``test_fraction +
    val_fraction`` validation, else train. Adding or removing other patients moves nobody. Where a split would stay
    empty (few patients), the patients of lowest draw among the train ones fill it."""
    n = len(patients)
    if n < 3:
        raise DataFolderError(f"only {n} patient(s) found; a split by patient needs at least 3 (one each for train, "
                              "validation and test). Add patients, put slices of different patients in different "
                              "sub-folders, or set --patient-pattern to the part of the file name naming the patient.")
    draw = {p: patient_draw(p, seed) for p in patients}
    cut = options.test_fraction + options.val_fraction
    table = {p: "test" if d < options.test_fraction else "val" if d < cut else "train" for p, d in draw.items()}
    for split in ("test", "val"):
        if split not in table.values():
            spare = sorted((p for p in patients if table[p] == "train"), key=draw.get)
            if len(spare) > 1:
                table[spare[0]] = split
    if set(table.values()) != set(SPLIT_NAMES):
        raise DataFolderError(f"the split by patient left a split empty ({Counter(table.values())}); add patients.")
    return table


def check_no_leak(slices: list[Slice], split_of: list[str]) -> None:
    """No patient and no identical image in two splits."""
    patients, images = {}, {}
    for s, split in zip(slices, split_of):
        checks = [(s.patient, patients, f"patient {hashed(s.patient)}")]
        if np.ptp(s.pixels) > 0:  # blank slices repeat across patients without leaking anything
            checks.append((pixel_hash(s.pixels), images, "an identical image"))
        for key, table, what in checks:
            first = table.setdefault(key, (split, s.source))
            if first[0] != split:
                raise DataFolderError(f"the split leaks: {what} is in {first[0]} ({first[1]}) and in {split} "
                                      f"({s.source}). Move it so that each patient sits in one split, or remove the "
                                      "copy.")


def split_of(root: Path, slices: list[Slice], seed: int, options: FolderOptions) -> list[str]:
    """Each slice's split (the sub-folder's where the folder is split by hand, else its patient's draw), checked
    for leaks."""
    if given_splits(root):
        splits = [s.split for s in slices]
    else:
        table = assign_splits(sorted({s.patient for s in slices}), seed, options)
        splits = [table[s.patient] for s in slices]
    check_no_leak(slices, splits)
    return splits
