"""Your own images from a folder: DICOM (pydicom), NIfTI (nibabel), PNG or NumPy slices, split by patient.

This module is the front: the options (:class:`FolderOptions`, :class:`Intensity`), the intensity mapping, sizes,
and :func:`folder_images`; :mod:`recon.data.readers` reads files into slices, :mod:`recon.data.split_check` splits
them by patient and checks for leaks, :mod:`recon.data.data_card` writes the card, and the rules themselves live in
:mod:`recon.data.intensity`.

Every file is read into 2-D slices in physical units where the format has them (CT in Hounsfield units through the
DICOM rescale), mapped to the priors' [0, 1] range by a stated rule, padded to a square and resized:

* **CT** (DICOM modality CT, or ``modality="ct"``): a display window ``(low, high)`` in HU maps ``low`` to 0 and
  ``high`` to 1 and saturates outside, as a scanner display does (default: the head-CT soft-tissue window
  :data:`recon.data.intensity.CT_WINDOW`, -160 to 240 HU).
* **MRI** (modality MR, or ``modality="mri"``): each volume divided by its own ``percentile`` (99.5) intensity, values
  above saturate (MR intensities have no absolute scale).
* **display** (8- or 16-bit PNG, or NumPy already in [0, 1]): divided by the integer type's maximum, else as given.

A *patient* is the DICOM ``PatientID``; otherwise the first sub-folder under the root, otherwise the part of the
file name that ``patient_pattern`` matches (by default everything before the first underscore, so
``p07_slice012.png`` belongs to ``p07``). The split assigns whole patients to train, validation and test (by a hash of
the patient and the seed), so that no slice of a test patient is ever trained on; a root holding ``train/``, ``val/``
and ``test/`` sub-folders is split as given. Either way the split is checked: a patient, or an identical or
near-identical image (compared after the intensity rule and the resize, :mod:`recon.data.split_check`), in two splits
is an error (a leak). :func:`folder_images` returns the split's images and a data card (counts, sizes, intensity
range, split, hashed patient identifiers, what was skipped and why, the symbolic links followed) that training saves
beside the checkpoint.

Every input is used as it is, or left out and listed with why (the card's ``skipped``; :func:`describe_skipped` writes
the lines a program prints): files holding NaN or infinite values, colour images, DICOM files whose header disagrees
with their pixels, names with control characters, links to images already read, and folders holding recon's own
outputs (:data:`recon.files.OUTPUT_MARKER`) - see :mod:`recon.data.readers` and :mod:`recon.data.finding`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from skimage.transform import resize

from recon.data.data_card import data_card
from recon.data.finding import find_files
from recon.data.intensity import CT_WINDOW, MR_PERCENTILE, rule_for_modality
from recon.data.readers import (  # noqa: F401 (NotAnImage, Unreadable, file_kind, read_file: the programs import them from here)
    SPLIT_NAMES,
    DataFolderError,
    NotAnImage,
    Read,
    Slice,
    Unreadable,
    describe_skipped,
    file_kind,
    left_out,
    read_file,
    read_folder,
)
from recon.data.split_check import (  # noqa: F401 - assign_splits, hashed: the tests' names
    assign_splits,
    check_no_leak,
    drop_duplicates,
    hashed,
    split_of,
)
from recon.data.splits import check_request

DEFAULT_WINDOW = CT_WINDOW
MODALITIES = ("auto", "ct", "mri", "display")
SMALL_POLICIES = ("error", "skip", "upsample")
MIN_SIDE = 8  # pixels: a slice narrower than this carries no usable anatomy
# Where a slice's patient comes from: auto = DICOM PatientID, else the first sub-folder, else the file name.
PATIENT_SOURCES = ("auto", "folder", "name")


@dataclasses.dataclass(frozen=True)
class Intensity:
    """How source units become [0, 1]: the CT window in HU or the MR percentile per volume
    (:mod:`recon.data.intensity`)."""

    window: tuple[float, float] = DEFAULT_WINDOW
    percentile: float = MR_PERCENTILE

    def __post_init__(self):
        if not self.window[1] > self.window[0]:
            raise DataFolderError(f"the CT window must be (low, high) in HU with high > low; got {self.window}.")
        if not 50 < self.percentile <= 100:
            raise DataFolderError(f"the MR percentile must lie in (50, 100]; got {self.percentile}.")

    def describe(self, modality: str) -> dict:
        return rule_for_modality(modality).describe(self.window, self.percentile)


@dataclasses.dataclass(frozen=True)
class FolderOptions:
    """How to read a folder: see the module docstring. ``skip_unreadable``: leave out files that fail to read (they
    are listed in the data card) instead of stopping; ``small``: what to do with images smaller than the training
    size: ``"error"``, ``"skip"`` (listed in the data card) or ``"upsample"`` (interpolated up: no detail, a blur)."""

    modality: str = "auto"
    intensity: Intensity = Intensity()
    patient_pattern: str = r"[^_]+"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    skip_unreadable: bool = False
    small: str = "error"
    patient_from: str = "auto"

    def __post_init__(self):
        if self.patient_from not in PATIENT_SOURCES:
            raise DataFolderError(f"patient_from must be one of {PATIENT_SOURCES}; got {self.patient_from!r}.")
        if self.small not in SMALL_POLICIES:
            raise DataFolderError(f"small must be one of {SMALL_POLICIES}; got {self.small!r}.")
        if self.modality not in MODALITIES:
            raise DataFolderError(f"modality must be one of {MODALITIES}; got {self.modality!r}.")
        fractions = (self.val_fraction, self.test_fraction)
        if not (all(0 < f < 1 for f in fractions) and sum(fractions) < 1):
            raise DataFolderError("val_fraction and test_fraction must lie in (0, 1) and sum below 1; got "
                                  f"{self.val_fraction} and {self.test_fraction}.")


def left_out_lines(read: Read, limit: int = 5) -> str:
    """The first of the files left out, one indented line each, for an error message."""
    return "\n".join("  " + line for line in describe_skipped(read.skipped, limit))


def select_modality(read: Read, modality: str) -> tuple[Read, str]:
    """The slices of one modality: the one asked for (files without a modality of their own, PNG, NumPy, NIfTI, take
    it; DICOM files whose Modality tag says otherwise, secondary captures included, are left out and listed), or,
    with ``"auto"``, the only one present."""
    if not read.slices:
        raise DataFolderError("no slice could be used; the files left out, and why:\n" + left_out_lines(read))
    if modality == "auto":
        present = Counter(s.modality for s in read.slices)
        if len(present) > 1:
            counts = ", ".join(f"{n} {m}" for m, n in sorted(present.items()))
            raise DataFolderError(f"the folder mixes modalities ({counts} slices); a prior models one kind of image: "
                                  "pass --modality ct, mri or display to keep one.")
        return read, next(iter(present))
    kept, other = [], []
    for s in read.slices:
        if s.modality == modality or s.modality == "display" and "#" not in s.source:  # a PNG, .npy or NIfTI slice
            kept.append(dataclasses.replace(s, modality=modality))
        else:
            tag = "no CT or MR Modality tag" if s.modality == "display" else f"modality {s.modality}"
            other.append(left_out(s, f"{tag}, not {modality} (set the tag to use it)"))
    return read.keep(kept, other), modality


def to_unit_range(slices: list[Slice], modality: str, intensity: Intensity) -> list[np.ndarray]:
    """Each slice in [0, 1] by the modality's rule (CT window; MR per-volume percentile; display as read)."""
    rule = rule_for_modality(modality)
    if rule.name == "unit":
        outside = [s.source for s in slices if s.pixels.min() < 0 or s.pixels.max() > 1]
        if outside:
            raise DataFolderError(f"{len(outside)} slice(s) hold values outside [0, 1] (e.g. {outside[0]}); say what "
                                  "they are with --modality ct (Hounsfield units) or --modality mri (normalised per "
                                  "volume).")
    return rule.to_unit([s.pixels for s in slices], [s.volume for s in slices], intensity.window, intensity.percentile)


def square(image: np.ndarray) -> np.ndarray:
    """``image`` centred on a square of zeros (the background after the intensity mapping)."""
    h, w = image.shape
    side = max(h, w)
    out = np.zeros((side, side), dtype=image.dtype)
    out[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = image
    return out


def resized(image: np.ndarray, size: int) -> np.ndarray:
    """A square image resized to ``size`` with anti-aliasing (an area-like average when shrinking)."""
    if image.shape[0] == size:
        return image
    return resize(image, (size, size), order=1, anti_aliasing=image.shape[0] > size, preserve_range=True)


def check_sizes(read: Read, size: int, small_policy: str) -> Read:
    """The slices to use: those smaller than ``size`` stop the run, are left out (and listed) or kept to upsample."""
    small = [s for s in read.slices if max(s.pixels.shape) < size]
    if small and small_policy == "skip":
        read = read.keep([s for s in read.slices if max(s.pixels.shape) >= size],
                         [left_out(s, f"smaller than --size {size}: {s.pixels.shape}") for s in small])
    elif small and small_policy == "error":
        shapes = Counter("x".join(map(str, s.pixels.shape)) for s in small)
        largest = max(max(s.pixels.shape) for s in small)
        fix = (f"pass a --size no larger than {largest}, or " if largest >= MIN_SIDE else
               f"they are too small to use (a slice needs at least {MIN_SIDE} pixels on each side); ")
        raise DataFolderError(f"{len(small)} slice(s) are smaller than --size {size} ({dict(shapes)}, e.g. "
                              f"{small[0].source}): {fix}pass --small skip to leave them out or --small upsample to "
                              "interpolate them up.")
    thin = [s for s in read.slices if min(s.pixels.shape) < MIN_SIDE]
    if thin:
        raise DataFolderError(f"{len(thin)} slice(s) are thinner than {MIN_SIDE} pixels (e.g. {thin[0].source}, "
                              f"{thin[0].pixels.shape}): not images this tool can use; remove them.")
    return read


def signature(root: Path) -> tuple:
    """What the folder holds, cheaply: every file's path, size and modification time, as the reader finds them (a
    changed folder is re-read)."""
    files = find_files(Path(root), lambda path: True).files
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def usable_slices(root: Path, size: int, options: FolderOptions) -> tuple[Read, str, int]:
    """The slices to train on, with the files left out, their modality and the number of duplicates dropped."""
    read, modality = select_modality(read_folder(root, options), options.modality)
    if not read.slices:
        raise DataFolderError(f"no {options.modality} slices under {root}; the files left out, and why:\n"
                              + left_out_lines(read))
    kept, duplicates = drop_duplicates(read.slices)
    read = check_sizes(read.keep(kept), size, options.small)
    if not read.slices:
        raise DataFolderError(f"every slice under {root} is smaller than --size {size}; pass a smaller --size.")
    return read, modality, duplicates


@functools.lru_cache(maxsize=4)
def load_folder(root: str, size: int, seed: int, options: FolderOptions,
                _signature: tuple = ()) -> tuple[dict[str, torch.Tensor], dict]:
    """Images of every split, ``{"train": (n, 1, size, size), ...}`` in [0, 1], and the data card (cached while the
    folder's :func:`signature` stays the same)."""
    root_path = Path(root)
    read, modality, duplicates = usable_slices(root_path, size, options)
    splits = split_of(root_path, read.slices, seed, options)
    images = [resized(square(m), size).astype(np.float32)
              for m in to_unit_range(read.slices, modality, options.intensity)]
    check_no_leak(read.slices, images, splits)
    card = data_card(root_path, read, splits, modality, size, seed, options, duplicates)
    return by_split(images, splits, size), card


def by_split(images: list[np.ndarray], split_of: list[str], size: int) -> dict[str, torch.Tensor]:
    out = {}
    for name in SPLIT_NAMES:
        members = [image for image, split in zip(images, split_of) if split == name]
        out[name] = torch.from_numpy(np.stack(members)[:, None]) if members else torch.zeros((0, 1, size, size))
    return out


def folder_images(root: str | Path, n: int | None = None, size: int = 64, split: str = "train", seed: int = 0,
                  options: FolderOptions = FolderOptions()) -> tuple[torch.Tensor, dict]:
    """``(images, card)``: the images ``(k, 1, size, size)`` in [0, 1] of ``split`` (in file order; ``n`` of them
    drawn at random by ``seed`` where the split holds more), and the data card of the whole folder. An empty split is
    an error naming the counts."""
    check_request(n or 1, size, split, seed)
    root = Path(root).resolve()
    images, card = load_folder(str(root), size, seed, options, signature(root) if root.is_dir() else ())
    if images[split].shape[0] == 0:
        raise DataFolderError(f"the {split} split of {root} is empty ({card['counts']}); add patients to it.")
    chosen = images[split]
    if n is not None and n < chosen.shape[0]:
        chosen = chosen[np.sort(np.random.default_rng(seed).choice(chosen.shape[0], n, replace=False))]
    return chosen, card
