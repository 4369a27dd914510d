"""Your own images from a folder: DICOM (pydicom), NIfTI (nibabel), PNG or NumPy slices, split by patient.

Every file is read into 2-D slices in physical units where the format has them (CT in Hounsfield units through the
DICOM rescale), mapped to the priors' [0, 1] range by a stated rule, padded to a square and resized:

* **CT** (DICOM modality CT, or ``modality="ct"``): a display window ``(low, high)`` in HU maps ``low`` to 0 and
  ``high`` to 1 and saturates outside, as a scanner display does (default: the soft-tissue window of
  :func:`recon.data.ct_small`, -160 to 240 HU).
* **MRI** (modality MR, or ``modality="mri"``): each volume divided by its own ``percentile`` (99.5) intensity, values
  above saturate (MR intensities have no absolute scale).
* **display** (8- or 16-bit PNG, or NumPy already in [0, 1]): divided by the integer type's maximum, else as given.

A *patient* is the DICOM ``PatientID``; otherwise the first sub-folder under the root, otherwise the part of the
file name that ``patient_pattern`` matches (by default everything before the first underscore, so
``p07_slice012.png`` belongs to ``p07``). The split assigns whole patients to train, validation and test (by a hash of
the patient and the seed), so that no slice of a test patient is ever trained on; a root holding ``train/``, ``val/``
and ``test/`` sub-folders is split as given. Either way the split is checked: a patient, or an identical image, in
two splits is an error (a leak). :func:`folder_images` returns the split's images and a data card (counts, sizes,
intensity range, split, hashed patient identifiers, what was skipped and why) that training saves beside the
checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from skimage.transform import resize

from recon.data.splits import check_request

DEFAULT_WINDOW = (-160.0, 240.0)
MODALITIES = ("auto", "ct", "mri", "display")
SMALL_POLICIES = ("error", "skip", "upsample")
# Where a slice's patient comes from: auto = DICOM PatientID, else the first sub-folder, else the file name.
PATIENT_SOURCES = ("auto", "folder", "name")
SPLIT_NAMES = ("train", "val", "test")
SUFFIXES = {".dcm": "dicom", ".dicom": "dicom", ".ima": "dicom", ".nii": "nifti", ".gz": "nifti", ".png": "png",
            ".npy": "numpy"}


class DataFolderError(ValueError):
    """A folder of images that cannot be used as asked; the message names the files and the fix."""


@dataclasses.dataclass
class Slice:
    """One 2-D image in its source units, with where it came from."""

    pixels: np.ndarray
    patient: str
    volume: str
    source: str
    modality: str
    spacing: tuple[float, float] | None = None
    split: str | None = None  # set where the folder is split by hand
    index: int = 0  # the slice's place in its file: z of a volume, frame of a multi-frame file


@dataclasses.dataclass(frozen=True)
class Intensity:
    """How source units become [0, 1]: the CT window in HU or the MR percentile per volume."""

    window: tuple[float, float] = DEFAULT_WINDOW
    percentile: float = 99.5

    def __post_init__(self):
        if not self.window[1] > self.window[0]:
            raise DataFolderError(f"the CT window must be (low, high) in HU with high > low; got {self.window}.")
        if not 50 < self.percentile <= 100:
            raise DataFolderError(f"the MR percentile must lie in (50, 100]; got {self.percentile}.")

    def describe(self, modality: str) -> dict:
        if modality == "ct":
            return {"rule": "CT window in HU, low -> 0, high -> 1, saturating", "window_hu": list(self.window)}
        if modality == "mri":
            return {"rule": "each volume divided by its own percentile intensity, saturating",
                    "percentile": self.percentile}
        return {"rule": "integer images divided by their type's maximum; floating-point images as given"}


def file_kind(path: Path) -> str | None:
    """``"dicom"``, ``"nifti"``, ``"png"``, ``"numpy"`` or None (not an image file we read)."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return "nifti" if path.name.lower().endswith(".nii.gz") else None
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if path.is_file():  # DICOM files often have no suffix, or a UID's last digits: look for the "DICM" preamble
        with path.open("rb") as handle:
            return "dicom" if handle.read(132)[128:] == b"DICM" else None
    return None


def _dicom_slices(path: Path, relative: str, fallback_patient: str, use_tag: bool = True) -> list[Slice]:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    ds = pydicom.dcmread(path)
    modality = {"CT": "ct", "MR": "mri"}.get(str(ds.get("Modality", "")), "display")
    if "PixelData" not in ds:
        raise _NotAnImage(f"no pixel data (modality {ds.get('Modality', '?')})")
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() not in ("MONOCHROME1", "MONOCHROME2"):
        raise _NotAnImage(f"a colour image ({ds.PhotometricInterpretation}); only greyscale images are used")
    pixels = apply_modality_lut(np.asarray(ds.pixel_array), ds).astype(np.float64)  # rescaled: HU for CT
    frames = pixels if pixels.ndim == 3 else pixels[None]
    patient = str(ds.get("PatientID", "") or fallback_patient) if use_tag else fallback_patient
    volume = str(ds.get("SeriesInstanceUID", "") or relative)
    spacing = tuple(float(s) for s in ds.PixelSpacing) if "PixelSpacing" in ds else None
    instance = str(ds.get("SOPInstanceUID", "") or relative)
    return [Slice(frame, patient, volume, f"{relative}#{instance}:{k}", modality, spacing, index=k)
            for k, frame in enumerate(frames)]


def _nifti_slices(path: Path, relative: str, patient: str, modality: str) -> list[Slice]:
    import nibabel

    image = nibabel.as_closest_canonical(nibabel.load(path))  # RAS: axis 2 runs foot to head (axial slices)
    data = np.asarray(image.get_fdata(dtype=np.float64))
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise DataFolderError(f"{relative}: a {data.ndim}-D NIfTI image {data.shape}; only 2-D images and 3-D volumes "
                              "are read (split a time series or multi-echo file into volumes first).")
    data = data[..., None] if data.ndim == 2 else data
    zooms = image.header.get_zooms()[:2]
    # Axial slices shown radiologically (rows anterior to posterior), skipping empty ones at the volume's ends.
    return [Slice(np.rot90(data[:, :, k]), patient, relative, f"{relative}:{k}", modality, tuple(map(float, zooms)),
                  index=k) for k in range(data.shape[2]) if np.ptp(data[:, :, k]) > 0]


def _plain_slices(path: Path, relative: str, patient: str, kind: str, modality: str) -> list[Slice]:
    if kind == "png":
        from PIL import Image

        with Image.open(path) as image:
            if image.mode not in ("L", "I", "I;16", "I;16B", "F", "1", "P", "LA"):
                raise _NotAnImage(f"a {image.mode} image; only greyscale PNGs are used (convert it to greyscale)")
            pixels = np.asarray(image.convert("L") if image.mode in ("P", "LA", "1") else image)
    else:
        pixels = np.load(path, allow_pickle=False)
    scale = float(np.iinfo(pixels.dtype).max) if np.issubdtype(pixels.dtype, np.integer) and modality == "display" \
        else 1.0
    pixels = np.asarray(pixels, dtype=np.float64) / scale
    frames = pixels if pixels.ndim == 3 else pixels[None]
    if pixels.ndim not in (2, 3):
        raise DataFolderError(f"{relative}: an array of shape {pixels.shape}; a slice is 2-D (or a 3-D stack).")
    return [Slice(frame, patient, relative, f"{relative}:{k}", modality, index=k) for k, frame in enumerate(frames)]


class _NotAnImage(Exception):
    """A readable file that holds no greyscale image (a plan, a report, a colour picture): skipped, and listed."""


def patient_of(relative: Path, pattern: str, source: str = "auto") -> str:
    """The patient of a file without a patient tag (or with ``source="name"``/``"folder"``): its first sub-folder
    (unless ``source="name"``), else what ``pattern`` matches in its name."""
    if len(relative.parts) > 1 and source != "name":
        return relative.parts[0]
    stem = relative.name.split(".")[0]
    match = re.match(pattern, stem)
    return match.group(0) if match and match.group(0) else stem


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


def image_files(root: Path) -> list[Path]:
    """The image files under ``root`` (recursively, hidden files and folders left out), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataFolderError(f"{root} is not a folder; pass a folder of DICOM, NIfTI, PNG or .npy files.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                   p.relative_to(root).parts) and file_kind(p) is not None)
    if not files:
        raise DataFolderError(f"no image files under {root}: looked for DICOM (.dcm, .ima, or no suffix with a DICM "
                              "preamble), NIfTI (.nii, .nii.gz), PNG and NumPy (.npy) files.")
    return files


def read_file(path: Path, relative: Path, options: FolderOptions) -> list[Slice]:
    """The slices of one file, in source units."""
    kind = file_kind(path)
    patient = patient_of(relative, options.patient_pattern, options.patient_from)
    if kind == "dicom":
        return _dicom_slices(path, str(relative), patient, use_tag=options.patient_from == "auto")
    if kind == "nifti":
        if options.modality in ("auto", "display"):
            raise DataFolderError(f"{relative}: NIfTI files do not say what scanner made them; pass --modality ct "
                                  "(values in HU) or --modality mri.")
        return _nifti_slices(path, str(relative), patient, options.modality)
    modality = "display" if options.modality == "auto" else options.modality
    return _plain_slices(path, str(relative), patient, kind, modality)


def scan(root: Path, options: FolderOptions, split: str | None = None) -> tuple[list[Slice], list[dict]]:
    """Every slice under ``root`` and the files left out (``{"file", "reason"}``); unreadable files stop the scan
    with their names unless ``options.skip_unreadable``."""
    slices, skipped, unreadable = [], [], []
    for path in image_files(root):
        relative = path.relative_to(root)
        try:
            slices += read_file(path, relative, options)
        except DataFolderError:
            raise
        except _NotAnImage as reason:
            skipped.append({"file": str(relative), "reason": str(reason)})
        except Exception as error:  # noqa: BLE001 - any reader failure is reported with the file's name
            first_line = (str(error).splitlines() or [""])[0]
            unreadable.append({"file": str(relative), "reason": f"unreadable: {type(error).__name__}: {first_line}"[:200]})
    if unreadable and not options.skip_unreadable:
        listed = "\n".join(f"  {u['file']}: {u['reason']}" for u in unreadable[:10])
        more = f"\n  ... and {len(unreadable) - 10} more" if len(unreadable) > 10 else ""
        raise DataFolderError(f"{len(unreadable)} file(s) under {root} could not be read:\n{listed}{more}\nFix or "
                              "remove them, or pass --skip-unreadable to leave them out (the data card lists them).")
    return slices, skipped + unreadable


def select_modality(slices: list[Slice], skipped: list[dict], modality: str) -> tuple[list[Slice], str]:
    """The slices of one modality: the one asked for (files without a modality of their own, PNG, NumPy, NIfTI, take
    it; DICOM files whose Modality tag says otherwise, secondary captures included, are skipped and listed), or,
    with ``"auto"``, the only one present."""
    if not slices:
        raise DataFolderError(f"no slice could be used (the files left out, and why: {skipped[:3]} ...).")
    if modality == "auto":
        present = Counter(s.modality for s in slices)
        if len(present) > 1:
            counts = ", ".join(f"{n} {m}" for m, n in sorted(present.items()))
            raise DataFolderError(f"the folder mixes modalities ({counts} slices); a prior models one kind of image: "
                                  "pass --modality ct, mri or display to keep one.")
        return slices, next(iter(present))
    kept = []
    for s in slices:
        if s.modality == modality or s.modality == "display" and "#" not in s.source:  # a PNG, .npy or NIfTI slice
            kept.append(dataclasses.replace(s, modality=modality))
        else:
            tag = "no CT or MR Modality tag" if s.modality == "display" else f"modality {s.modality}"
            skipped.append({"file": s.source.split("#")[0], "reason": f"{tag}, not {modality} (set the tag to use it)"})
    return kept, modality


def to_unit_range(slices: list[Slice], modality: str, intensity: Intensity) -> list[np.ndarray]:
    """Each slice in [0, 1] by the modality's rule (CT window; MR per-volume percentile; display as read)."""
    if modality == "ct":
        low, high = intensity.window
        return [np.clip((s.pixels - low) / (high - low), 0.0, 1.0) for s in slices]
    if modality == "mri":
        top = {}
        for volume in {s.volume for s in slices}:
            values = np.concatenate([s.pixels.ravel() for s in slices if s.volume == volume])
            top[volume] = max(float(np.percentile(values, intensity.percentile)), 1e-12)
        return [np.clip(s.pixels / top[s.volume], 0.0, 1.0) for s in slices]
    outside = [s.source for s in slices if s.pixels.min() < 0 or s.pixels.max() > 1]
    if outside:
        raise DataFolderError(f"{len(outside)} slice(s) hold values outside [0, 1] (e.g. {outside[0]}); say what "
                              "they are with --modality ct (Hounsfield units) or --modality mri (normalised per "
                              "volume).")
    return [s.pixels for s in slices]


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


def check_sizes(slices: list[Slice], size: int, small_policy: str, skipped: list[dict]) -> list[Slice]:
    """The slices to use: those smaller than ``size`` stop the run, are skipped (and listed) or kept to upsample."""
    small = [s for s in slices if max(s.pixels.shape) < size]
    if small and small_policy == "skip":
        skipped += [{"file": s.source.split("#")[0], "reason": f"smaller than --size {size}: {s.pixels.shape}"}
                    for s in small]
        slices = [s for s in slices if max(s.pixels.shape) >= size]
    elif small and small_policy == "error":
        shapes = Counter("x".join(map(str, s.pixels.shape)) for s in small)
        raise DataFolderError(f"{len(small)} slice(s) are smaller than --size {size} ({dict(shapes)}, e.g. "
                              f"{small[0].source}): pass a --size no larger than "
                              f"{max(max(s.pixels.shape) for s in small)}"
                              ", or pass --small skip to leave them out or --small upsample to interpolate them up.")
    thin = [s for s in slices if min(s.pixels.shape) < 8]
    if thin:
        raise DataFolderError(f"{len(thin)} slice(s) are thinner than 8 pixels (e.g. {thin[0].source}, "
                              f"{thin[0].pixels.shape}): not images this tool can use; remove them.")
    return slices


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


def given_splits(root: Path) -> bool:
    """Whether ``root`` is split by hand: ``train/``, ``val/`` and ``test/`` sub-folders and nothing else of images."""
    return all((root / name).is_dir() for name in SPLIT_NAMES)


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


def read_folder(root: Path, options: FolderOptions) -> tuple[list[Slice], list[dict]]:
    """Every slice under ``root`` (under its ``train/``, ``val/``, ``test/`` sub-folders if split by hand, each slice
    then carrying its split) and the files left out."""
    if not given_splits(root):
        return scan(root, options)
    slices, skipped = [], []
    for name in SPLIT_NAMES:
        found, left = scan(root / name, options)
        slices += [dataclasses.replace(s, split=name, source=f"{name}/{s.source}") for s in found]
        skipped += [{**k, "file": f"{name}/{k['file']}"} for k in left]
    return slices, skipped


def source_summary(slices: list[Slice]) -> dict:
    values = np.concatenate([s.pixels.ravel()[:: max(1, s.pixels.size // 4096)] for s in slices])
    spacings = [min(s.spacing) for s in slices if s.spacing]
    return {"shapes": dict(Counter("x".join(map(str, s.pixels.shape)) for s in slices).most_common()),
            "intensity": {"min": float(min(s.pixels.min() for s in slices)), "p1": float(np.percentile(values, 1)),
                          "p99": float(np.percentile(values, 99)), "max": float(max(s.pixels.max() for s in slices))},
            "pixel_spacing_mm": [min(spacings), max(spacings)] if spacings else None}


def data_card(root: Path, slices: list[Slice], split_of: list[str], modality: str, size: int, seed: int,
              options: FolderOptions, skipped: list[dict], duplicates: int) -> dict:
    counts, patients = {}, {}
    for name in SPLIT_NAMES:
        members = [s for s, split in zip(slices, split_of) if split == name]
        patients[name] = sorted({hashed(s.patient) for s in members})
        counts[name] = {"patients": len(patients[name]), "volumes": len({s.volume for s in members}),
                        "slices": len(members)}
    fingerprint = hashlib.sha256("".join(sorted(s.source + pixel_hash(s.pixels) for s in slices)).encode())
    by_file = {k["file"]: k["reason"] for k in skipped}
    return {"root": str(root), "fingerprint": fingerprint.hexdigest(), "modality": modality,
            "intensity": options.intensity.describe(modality), "size": size, "seed": seed,
            "split_rule": "given by the train/, val/ and test/ sub-folders" if given_splits(root) else
            f"by patient: each patient's draw from sha256(seed:patient) below {options.test_fraction:g} test, below "
            f"{options.test_fraction + options.val_fraction:g} validation, else train (at least one each)",
            "options": {**dataclasses.asdict(options), "intensity": dataclasses.asdict(options.intensity)},
            "patient_rule": {"auto": "DICOM PatientID; else the first sub-folder; else", "folder": "the first "
                             "sub-folder; else", "name": ""}[options.patient_from] + f" the file name's match of "
                            f"{options.patient_pattern!r}", "counts": counts, "source": source_summary(slices),
            "patients_sha256_12": patients, "duplicates_dropped": duplicates,
            "skipped": [{"file": f, "reason": r} for f, r in sorted(by_file.items())],
            "preprocessing": "intensity rule, centred on a square of zeros, resized with anti-aliasing (bilinear)"}


def signature(root: Path) -> tuple:
    """What the folder holds, cheaply: every file's path, size and modification time (a changed folder is re-read)."""
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(Path(root).rglob("*")) if p.is_file())


@functools.lru_cache(maxsize=4)
def load_folder(root: str, size: int, seed: int, options: FolderOptions,
                _signature: tuple = ()) -> tuple[dict[str, torch.Tensor], dict]:
    """Images of every split, ``{"train": (n, 1, size, size), ...}`` in [0, 1], and the data card (cached while the
    folder's :func:`signature` stays the same)."""
    root_path = Path(root)
    slices, skipped = read_folder(root_path, options)
    slices, modality = select_modality(slices, skipped, options.modality)
    if not slices:
        raise DataFolderError(f"no {options.modality} slices under {root} (the files left out, and why: "
                              f"{skipped[:3]} ...).")
    slices, duplicates = drop_duplicates(slices)
    slices = check_sizes(slices, size, options.small, skipped)
    if not slices:
        raise DataFolderError(f"every slice under {root} is smaller than --size {size}; pass a smaller --size.")
    if given_splits(root_path):
        split_of = [s.split for s in slices]
    else:
        table = assign_splits(sorted({s.patient for s in slices}), seed, options)
        split_of = [table[s.patient] for s in slices]
    check_no_leak(slices, split_of)
    images = [resized(square(m), size).astype(np.float32) for m in to_unit_range(slices, modality, options.intensity)]
    card = data_card(root_path, slices, split_of, modality, size, seed, options, skipped, duplicates)
    return by_split(images, split_of, size), card


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
