"""Readers of image files into 2-D slices in their source units: DICOM (pydicom, HU through the rescale), NIfTI
(nibabel, axial slices of a canonical volume), PNG (Pillow) and NumPy; and the scan of a folder, which returns the
slices it read and the files it left out (with why) as one :class:`Read` value (:func:`describe_skipped` writes
those for a console).

Nothing is dropped silently and nothing doubtful is kept: a slice holding NaN or infinite values is left out and
listed; a colour image (RGB, RGBA PNG or DICOM, an ``(h, w, 3)`` array) is listed with the fix (convert it to
greyscale); a DICOM file whose Rows x Columns x NumberOfFrames disagree with its pixel data is unreadable (pydicom
would cut the pixels into frames of the stated size). Which files are looked at, and which folders, links and names
are left out, is :mod:`recon.data.finding`'s."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recon.data.finding import Found, find_files, printable
from recon.files import OUTPUT_MARKER, is_output

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




MAX_SIDE = 4096
MAX_SLICE_PIXELS = MAX_SIDE * MAX_SIDE  # per slice; larger files are listed and left out


class Unreadable(Exception):
    """A file that reads but contradicts itself (a header that disagrees with its pixels): listed as unreadable."""


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
    """Slices, the files left out (``{"file", "reason"}``) and the symbolic links followed (``{"link", "target"}``);
    each step that leaves slices out returns a new one."""

    slices: list[Slice]
    skipped: list[dict] = dataclasses.field(default_factory=list)
    links: list[dict] = dataclasses.field(default_factory=list)

    def keep(self, kept: list[Slice], dropped: Sequence[dict] = ()) -> Read:
        """``kept`` in place of the slices, with ``dropped`` added to the files left out."""
        return Read(kept, self.skipped + list(dropped), self.links)


def describe_skipped(skipped: Sequence[dict], limit: int = 20) -> list[str]:
    """Console lines for the entries left out (a :class:`Read`'s ``skipped``, or a data card's): one
    ``"skipped FILE: REASON"`` line per entry (the same file and reason once), at most ``limit`` of them and a line
    counting the rest.

    >>> describe_skipped([{"file": "p1/a.png", "reason": "an RGB image"}] * 2)
    ['skipped p1/a.png: an RGB image']
    """
    entries = list(dict.fromkeys((k["file"], k["reason"]) for k in skipped))
    lines = [f"skipped {file}: {reason}" for file, reason in entries[:limit]]
    if len(entries) > limit:
        lines.append(f"... and {len(entries) - limit} more file(s) left out (all listed in the data card)")
    return lines


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
        raise NotAnImage(f"a colour image ({ds.PhotometricInterpretation}); only greyscale images are used (convert "
                         "it to greyscale)")
    frames = _dicom_frames(ds)
    frames = apply_modality_lut(frames, ds).astype(np.float64)  # rescaled: HU for CT
    patient = printable(str(ds.get("PatientID", "") or fallback_patient)) if use_tag else fallback_patient
    volume = str(ds.get("SeriesInstanceUID", "") or relative)
    spacing = tuple(float(s) for s in ds.PixelSpacing) if "PixelSpacing" in ds else None
    instance = str(ds.get("SOPInstanceUID", "") or relative)
    return [Slice(frame, patient, volume, f"{relative}#{instance}:{k}", modality, spacing, index=k)
            for k, frame in enumerate(frames)]


def _dicom_frames(ds) -> np.ndarray:
    """The stored frames ``(frames, rows, columns)``, checked against the header: pydicom cuts pixel data of another
    size into frames of Rows x Columns (a 128 x 128 image under a 64 x 64 header becomes 4 scrambled frames)."""
    import warnings

    expected = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns))
    check_slice_size(expected[1:])  # from the header: nothing is decoded yet
    with warnings.catch_warnings():  # pydicom's warning about extra frames: the mismatch is reported below
        warnings.simplefilter("ignore", UserWarning)
        array = np.asarray(ds.pixel_array)
    frames = array if array.ndim == 3 else array[None]
    if frames.shape != expected:
        n_frames, rows, columns = expected
        size = len(ds.PixelData)
        stored = "" if ds.file_meta.TransferSyntaxUID.is_compressed else \
            f" ({size} bytes at {ds.BitsAllocated} bits: {size * 8 // ds.BitsAllocated} pixels)"
        read_as = " x ".join(map(str, frames.shape))
        raise Unreadable(f"the header's Rows x Columns x NumberOfFrames = {rows} x {columns} x {n_frames} "
                         f"({rows * columns * n_frames} pixels) disagrees with the pixel data{stored}, which pydicom "
                         f"reads as {read_as}; fix the header or export the file again")
    return frames


def _nifti_slices(path: Path, relative: str, patient: str, modality: str) -> list[Slice]:
    import nibabel

    image = nibabel.as_closest_canonical(nibabel.load(path))  # RAS: axis 2 runs foot to head (axial slices)
    check_slice_size(image.shape[:2])  # from the header: nothing is decoded yet
    data = np.asarray(image.get_fdata(dtype=np.float64))
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise DataFolderError(f"{relative}: a {data.ndim}-D NIfTI image {data.shape}; only 2-D images and 3-D volumes "
                              "are read (split a time series or multi-echo file into volumes first).")
    data = data[..., None] if data.ndim == 2 else data
    zooms = image.header.get_zooms()[:2]
    # Axial slices shown radiologically (rows anterior to posterior), skipping constant ones at the volume's ends
    # (a slice with NaN has a NaN range: it is kept here and listed by the scan's check for non-finite values).
    return [Slice(np.rot90(data[:, :, k]), patient, relative, f"{relative}:{k}", modality, tuple(map(float, zooms)),
                  index=k) for k in range(data.shape[2]) if np.ptp(data[:, :, k]) != 0]


def check_slice_size(shape: tuple) -> None:
    """Refuse, from the header alone, a slice over :data:`MAX_SLICE_PIXELS` (a small compressed file can hold an
    image that takes gigabytes and minutes to decode)."""
    rows, columns = shape[-2:] if len(shape) >= 2 else (1, shape[0] if shape else 1)
    if rows * columns > MAX_SLICE_PIXELS:
        raise NotAnImage(f"{rows} x {columns} pixels a slice, above the reader's limit of {MAX_SIDE} x {MAX_SIDE}; "
                         "downsample it first")


def _png_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        check_slice_size(image.size[::-1])  # read from the header: nothing is decoded yet
        if image.mode not in GREYSCALE_PNG_MODES:
            raise NotAnImage(f"an {image.mode} (colour) image; only greyscale images are used: convert it to "
                             "greyscale (e.g. Pillow's image.convert('L'))")
        return np.asarray(image.convert("L") if image.mode in ("P", "LA", "1") else image)


def _plain_slices(path: Path, relative: str, patient: str, kind: str, modality: str) -> list[Slice]:
    if kind != "png":
        check_slice_size(np.load(path, mmap_mode="r", allow_pickle=False).shape)  # the header only
    pixels = _png_pixels(path) if kind == "png" else np.load(path, allow_pickle=False)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4) and min(pixels.shape[:2]) >= 8:
        raise NotAnImage(f"an array of shape {pixels.shape}, a colour image (channels last); only greyscale images "
                         "are used: convert it to greyscale (a stack of slices is (slices, rows, columns))")
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


def image_files(root: Path) -> Found:
    """The image files under ``root`` (recursively; which entries are left out, and why, is
    :mod:`recon.data.finding`'s), sorted, with the entries left out and the links followed."""
    root = Path(root)
    if not root.is_dir():
        raise DataFolderError(f"{root} is not a folder; pass a folder of DICOM, NIfTI, PNG or .npy files.")
    if is_output(root):
        raise DataFolderError(f"{root} holds recon's outputs (marker {OUTPUT_MARKER}), not input images; pass the "
                              "data folder.")
    found = find_files(root, lambda path: file_kind(path) is not None)
    if not found.files:
        left = "; left out:\n" + "\n".join(describe_skipped(found.skipped, 5)) if found.skipped else ""
        raise DataFolderError(f"no image files under {root}: looked for DICOM (.dcm, .ima, or no suffix with a DICM "
                              f"preamble), NIfTI (.nii, .nii.gz), PNG and NumPy (.npy) files{left}.")
    return found


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


def finite_only(slices: list[Slice], relative: str) -> tuple[list[Slice], list[dict]]:
    """The slices of one file without those holding NaN or infinite values, and the entry that lists those."""
    bad = [s.index for s in slices if not np.isfinite(s.pixels).all()]
    if not bad:
        return slices, []
    listed = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
    which = "its only slice" if len(slices) == 1 else f"{len(bad)} of its {len(slices)} slices (index {listed})"
    reason = (f"contains NaN/Inf values in {which}; left out (replace them, e.g. with numpy.nan_to_num, to use "
              f"{'them' if len(bad) > 1 else 'it'})")
    return [s for s in slices if s.index not in bad], [{"file": relative, "reason": reason}]


def _reason(error: Exception) -> str:
    if isinstance(error, Unreadable):
        return f"unreadable: {error}"
    first_line = (str(error).splitlines() or [""])[0]
    return f"unreadable: {type(error).__name__}: {first_line}"[:200]


def scan(root: Path, options: FolderOptions) -> Read:
    """Every slice under ``root`` and the files left out; unreadable files stop the scan with their names unless
    ``options.skip_unreadable``."""
    found = image_files(root)
    slices, skipped, unreadable = [], list(found.skipped), []
    for path in found.files:
        relative = path.relative_to(root)
        try:
            kept, dropped = finite_only(read_file(path, relative, options), str(relative))
            slices += kept
            skipped += dropped
        except DataFolderError:
            raise
        except NotAnImage as reason:
            skipped.append({"file": str(relative), "reason": str(reason)})
        except Exception as error:  # noqa: BLE001 - any reader failure is reported with the file's name
            unreadable.append({"file": str(relative), "reason": _reason(error)})
    if unreadable and not options.skip_unreadable:
        raise _unreadable_error(root, unreadable)
    return Read(slices, skipped + unreadable, found.links)


def given_splits(root: Path) -> bool:
    """Whether ``root`` is split by hand: ``train/``, ``val/`` and ``test/`` sub-folders and nothing else of images."""
    return all((root / name).is_dir() for name in SPLIT_NAMES)


def read_folder(root: Path, options: FolderOptions) -> Read:
    """Every slice under ``root`` (under its ``train/``, ``val/``, ``test/`` sub-folders if split by hand, each slice
    then carrying its split) and the files left out."""
    if not given_splits(root):
        return scan(root, options)
    slices, skipped, links = [], [], []
    for name in SPLIT_NAMES:
        found = scan(root / name, options)
        slices += [dataclasses.replace(s, split=name, source=f"{name}/{s.source}") for s in found.slices]
        skipped += [{**k, "file": f"{name}/{k['file']}"} for k in found.skipped]
        links += [{**k, "link": f"{name}/{k['link']}"} for k in found.links]
    return Read(slices, skipped, links)
