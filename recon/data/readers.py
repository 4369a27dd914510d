"""Readers of image files into 2-D slices in their source units: DICOM (pydicom, HU through the rescale), NIfTI
(nibabel, axial slices of a canonical volume), PNG (Pillow) and NumPy; and the scan of a folder, which returns the
slices it read and the files it left out (with why) as one :class:`Read` value."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recon.data.folder import FolderOptions

SUFFIXES = {".dcm": "dicom", ".dicom": "dicom", ".ima": "dicom", ".nii": "nifti", ".gz": "nifti", ".png": "png",
            ".npy": "numpy"}
SPLIT_NAMES = ("train", "val", "test")
GREYSCALE_PNG_MODES = ("L", "I", "I;16", "I;16B", "F", "1", "P", "LA")


class DataFolderError(ValueError):
    """A folder of images that cannot be used as asked; the message names the files and the fix."""


class NotAnImage(Exception):
    """A readable file that holds no greyscale image (a plan, a report, a colour picture): skipped, and listed."""


_NotAnImage = NotAnImage  # the name recon.cli.images imports


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
class Read:
    """Slices and the files left out (``{"file", "reason"}``); each step that leaves slices out returns a new one."""

    slices: list[Slice]
    skipped: list[dict] = dataclasses.field(default_factory=list)

    def keep(self, kept: list[Slice], dropped: Sequence[dict] = ()) -> Read:
        """``kept`` in place of the slices, with ``dropped`` added to the files left out."""
        return Read(kept, self.skipped + list(dropped))


def left_out(s: Slice, reason: str) -> dict:
    """The data card's entry for a slice left out: its file (without the DICOM instance) and why."""
    return {"file": s.source.split("#")[0], "reason": reason}


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
        raise NotAnImage(f"no pixel data (modality {ds.get('Modality', '?')})")
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper() not in ("MONOCHROME1", "MONOCHROME2"):
        raise NotAnImage(f"a colour image ({ds.PhotometricInterpretation}); only greyscale images are used")
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


def _png_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in GREYSCALE_PNG_MODES:
            raise NotAnImage(f"a {image.mode} image; only greyscale PNGs are used (convert it to greyscale)")
        return np.asarray(image.convert("L") if image.mode in ("P", "LA", "1") else image)


def _plain_slices(path: Path, relative: str, patient: str, kind: str, modality: str) -> list[Slice]:
    pixels = _png_pixels(path) if kind == "png" else np.load(path, allow_pickle=False)
    scale = float(np.iinfo(pixels.dtype).max) if np.issubdtype(pixels.dtype, np.integer) and modality == "display" \
        else 1.0
    pixels = np.asarray(pixels, dtype=np.float64) / scale
    frames = pixels if pixels.ndim == 3 else pixels[None]
    if pixels.ndim not in (2, 3):
        raise DataFolderError(f"{relative}: an array of shape {pixels.shape}; a slice is 2-D (or a 3-D stack).")
    return [Slice(frame, patient, relative, f"{relative}:{k}", modality, index=k) for k, frame in enumerate(frames)]


def patient_of(relative: Path, pattern: str, source: str = "auto") -> str:
    """The patient of a file without a patient tag (or with ``source="name"``/``"folder"``): its first sub-folder
    (unless ``source="name"``), else what ``pattern`` matches in its name."""
    if len(relative.parts) > 1 and source != "name":
        return relative.parts[0]
    stem = relative.name.split(".")[0]
    match = re.match(pattern, stem)
    return match.group(0) if match and match.group(0) else stem


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


def _unreadable_error(root: Path, unreadable: list[dict]) -> DataFolderError:
    listed = "\n".join(f"  {u['file']}: {u['reason']}" for u in unreadable[:10])
    more = f"\n  ... and {len(unreadable) - 10} more" if len(unreadable) > 10 else ""
    return DataFolderError(f"{len(unreadable)} file(s) under {root} could not be read:\n{listed}{more}\nFix or "
                           "remove them, or pass --skip-unreadable to leave them out (the data card lists them).")


def scan(root: Path, options: FolderOptions) -> Read:
    """Every slice under ``root`` and the files left out; unreadable files stop the scan with their names unless
    ``options.skip_unreadable``."""
    slices, skipped, unreadable = [], [], []
    for path in image_files(root):
        relative = path.relative_to(root)
        try:
            slices += read_file(path, relative, options)
        except DataFolderError:
            raise
        except NotAnImage as reason:
            skipped.append({"file": str(relative), "reason": str(reason)})
        except Exception as error:  # noqa: BLE001 - any reader failure is reported with the file's name
            first_line = (str(error).splitlines() or [""])[0]
            unreadable.append({"file": str(relative), "reason": f"unreadable: {type(error).__name__}: {first_line}"[:200]})
    if unreadable and not options.skip_unreadable:
        raise _unreadable_error(root, unreadable)
    return Read(slices, skipped + unreadable)


def given_splits(root: Path) -> bool:
    """Whether ``root`` is split by hand: ``train/``, ``val/`` and ``test/`` sub-folders and nothing else of images."""
    return all((root / name).is_dir() for name in SPLIT_NAMES)


def read_folder(root: Path, options: FolderOptions) -> Read:
    """Every slice under ``root`` (under its ``train/``, ``val/``, ``test/`` sub-folders if split by hand, each slice
    then carrying its split) and the files left out."""
    if not given_splits(root):
        return scan(root, options)
    slices, skipped = [], []
    for name in SPLIT_NAMES:
        found = scan(root / name, options)
        slices += [dataclasses.replace(s, split=name, source=f"{name}/{s.source}") for s in found.slices]
        skipped += [{**k, "file": f"{name}/{k['file']}"} for k in found.skipped]
    return Read(slices, skipped)
