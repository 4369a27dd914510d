"""The split of a folder's slices by patient and the checks that keep it honest: duplicates dropped, each patient
drawn into train, validation or test by a hash of the seed and its identifier, and no patient, identical image or
near-identical image in two splits (a leak).

The images are compared as the model sees them: after the intensity rule and the resize to the training size (a CT
slice that differs from another by 1 HU in an air pixel is the same image once windowed). Two images are
near-identical when no pixel differs by more than :data:`LEAK_TOLERANCE` (1/255 of the [0, 1] range, one step of an
8-bit display); images whose own range is within that tolerance (blank slices) carry nothing and are not compared.
The search is exact and cheap: images sorted by their mean (which moves by no more than the largest pixel
difference), and within a window of ``LEAK_TOLERANCE`` in the mean only pairs from different splits whose
:data:`PROBES` evenly spaced pixels all agree within the tolerance are compared whole. The cost is ``O(n log n)`` for
the sort plus ``PROBES`` values per pair of images whose means lie within the tolerance.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recon.data.readers import SPLIT_NAMES, DataFolderError, Slice, given_splits

if TYPE_CHECKING:
    from recon.data.folder import FolderOptions

LEAK_TOLERANCE = 1 / 255  # in the [0, 1] range: one step of an 8-bit display
PROBES = 64  # pixels compared before a whole image is


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


def near_pairs(images: np.ndarray, splits: Sequence[str], tolerance: float = LEAK_TOLERANCE) -> Iterator[tuple]:
    """``(i, j, largest difference)`` for the images ``(n, h, w)`` of different splits that differ nowhere by more
    than ``tolerance``, the blank ones (range within ``tolerance``) left out; see the module docstring for the
    search."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    splits = np.asarray(splits)
    probes = flat[:, np.linspace(0, flat.shape[1] - 1, min(PROBES, flat.shape[1])).astype(int)]
    order = [i for i in np.argsort(flat.mean(1), kind="stable") if np.ptp(flat[i]) > tolerance]
    means = flat.mean(1)[order]
    ends = np.searchsorted(means, means + tolerance + 1e-9, side="right")  # the mean moves by <= the largest change
    for a, i in enumerate(order):
        near = np.asarray(order[a + 1:ends[a]], dtype=int)
        near = near[splits[near] != splits[i]]
        near = near[np.abs(probes[near] - probes[i]).max(1, initial=0) <= tolerance]
        for j in near:
            largest = float(np.abs(flat[j] - flat[i]).max())
            if largest <= tolerance:
                yield (i, j, largest) if i < j else (j, i, largest)


def check_no_leak(slices: list[Slice], images: Sequence[np.ndarray], split_of: list[str],
                  tolerance: float = LEAK_TOLERANCE) -> None:
    """No patient in two splits, and no identical or near-identical image (``images``: the slices as the model sees
    them) in two splits; a leak is an error naming both files."""
    first_split = {}
    for s, split in zip(slices, split_of):
        first = first_split.setdefault(s.patient, (split, s.source))
        if first[0] != split:
            raise leak(f"patient {hashed(s.patient)}", (first[1], first[0]), (s.source, split))
    for i, j, largest in near_pairs(np.stack(images), split_of, tolerance):
        what = "an identical image" if largest == 0 else \
            f"a near-identical image (no pixel differs by more than {largest:.4f} <= {tolerance:.4f})"
        raise leak(f"{what} after the intensity rule and resizing", (slices[i].source, split_of[i]),
                   (slices[j].source, split_of[j]))


def leak(what: str, first: tuple[str, str], second: tuple[str, str]) -> DataFolderError:
    """The error for ``what`` found in two splits, each given as ``(file, split)``."""
    return DataFolderError(f"the split leaks: {what} is in {first[1]} ({first[0]}) and in {second[1]} ({second[0]}). "
                           "Move it so that each patient sits in one split, or remove the copy.")


def split_of(root: Path, slices: list[Slice], seed: int, options: FolderOptions) -> list[str]:
    """Each slice's split: the sub-folder's where the folder is split by hand, else its patient's draw (check the
    result with :func:`check_no_leak` on the images as the model sees them)."""
    if given_splits(root):
        splits = [s.split for s in slices]
    else:
        table = assign_splits(sorted({s.patient for s in slices}), seed, options)
        splits = [table[s.patient] for s in slices]
    return splits
