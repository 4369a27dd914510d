"""Reading one scan for :mod:`recon.cli.reconstruct` (its size checked from the file's header before its pixels are
decoded), and writing its results, each atomically (:func:`recon.files.atomic_write`), as .npy, PNG, a summary figure,
and a DICOM or NIfTI file that matches the input (in the input's units, with its geometry scaled to the reconstruction
grid)."""

from __future__ import annotations

import dataclasses
import gzip
import math
from pathlib import Path

import numpy as np
import torch

from recon.data.folder import (
    DEFAULT_WINDOW,
    MIN_SIDE,
    DataFolderError,
    FolderOptions,
    Intensity,
    NotAnImage,
    Slice,
    Unreadable,
    file_kind,
    read_file,
    resized,
    square,
    to_unit_range,
)
from recon.data.intensity import MR_PERCENTILE
from recon.files import atomic_write


@dataclasses.dataclass
class Scan:
    """One slice ready to measure: the truth on the prior's grid, the rendering at twice that grid (None where the
    scan is too small to measure off the grid), and what is needed to write results back in its units and
    geometry."""

    path: Path
    kind: str
    modality: str
    intensity: Intensity
    source: Slice
    index: int
    truth: torch.Tensor
    fine: torch.Tensor | None
    pads: tuple[int, int]  # rows, columns of zeros above and left of the slice in its square
    side: int  # the square's side in source pixels
    top: float = 1.0  # MRI: the volume's intensity mapped to 1
    classical: torch.Tensor | None = None


def scan_options(card: dict, *, modality: str | None = None, window: tuple[float, float] | None = None,
                 percentile: float | None = None) -> FolderOptions:
    """Modality and intensity rule: those given, else the prior's data card's, else the defaults."""
    data = card.get("data_card", {})
    intensity = data.get("intensity", {})
    window = window or intensity.get("window_hu") or DEFAULT_WINDOW
    percentile = percentile or intensity.get("percentile") or MR_PERCENTILE
    modality = modality or data.get("modality") or "auto"
    return FolderOptions(modality=modality, intensity=Intensity(tuple(window), percentile))


def read_scan(path: Path, card: dict, size: int, *, index: int | None = None, modality: str | None = None,
              window: tuple[float, float] | None = None, percentile: float | None = None) -> Scan:
    """The slice ``index`` of the scan at ``path`` (default: the middle one) for a prior of ``size`` pixels, read by
    :func:`scan_options`."""
    path = Path(path)
    if not path.is_file() or file_kind(path) is None:
        raise DataFolderError("not a DICOM, NIfTI (.nii, .nii.gz), PNG or .npy file" if path.is_file() else
                              "no such file")
    options = scan_options(card, modality=modality, window=window, percentile=percentile)
    slices = read_one(path, options)
    chosen = pick_slice(slices, index)
    if not np.isfinite(chosen.pixels).all():
        raise DataFolderError(f"slice {chosen.index} holds NaN or infinite values; replace them (e.g. with "
                              "numpy.nan_to_num) or pick another --slice.")
    if min(chosen.pixels.shape) < MIN_SIDE:
        raise DataFolderError(f"the image is {' x '.join(map(str, chosen.pixels.shape))} pixels, too small to use; a "
                              f"scan needs at least {MIN_SIDE} pixels on each side.")
    modality = chosen.modality if options.modality == "auto" else options.modality
    if chosen.modality not in (modality, "display"):
        raise DataFolderError(f"the file is {chosen.modality}, but the prior's data card (or --modality) says "
                              f"{modality}; pass a matching prior or --modality {chosen.modality}.")
    volume = [s for s in slices if s.volume == chosen.volume and s is not chosen]
    if chosen.modality == "mri" and file_kind(path) == "dicom":
        volume = series_siblings(path, chosen, options)  # MR is scaled per series, as in training
    group = [dataclasses.replace(s, modality=modality) for s in [chosen, *volume]]
    unit = to_unit_range(group, modality, options.intensity)[0]
    squared = square(unit)
    side, h, w = squared.shape[0], *unit.shape
    fine = resized(squared, 2 * size) if side >= 2 * size else None
    truth = fine.reshape(size, 2, size, 2).mean(axis=(1, 3)) if fine is not None else resized(squared, size)
    values = np.concatenate([s.pixels.ravel() for s in group])
    top = max(float(np.percentile(values, options.intensity.percentile)), 1e-12) if modality == "mri" else 1.0
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
    return Scan(path, file_kind(path), modality, options.intensity, chosen, chosen.index, as_tensor(truth),
                None if fine is None else as_tensor(fine), ((side - h) // 2, (side - w) // 2), side, top)


def header_shape(path: Path) -> tuple[tuple[int, int], int]:
    """``((rows, columns) of one slice, pixels in the whole file)`` from the file's header, its pixels not decoded;
    a header that cannot be read is a :class:`DataFolderError`."""
    try:
        shape = _header_dimensions(Path(path))
    except Exception as error:  # noqa: BLE001 - any reader failure names the file
        raise DataFolderError(f"unreadable: {type(error).__name__}: {error}") from None
    if len(shape) < 2:
        raise DataFolderError(f"an array of shape {shape}; a slice is 2-D (or a 3-D stack).")
    rows, columns = shape[:2] if file_kind(Path(path)) == "nifti" else shape[-2:]
    return (int(rows), int(columns)), math.prod(int(n) for n in shape)


def _header_dimensions(path: Path) -> tuple[int, ...]:
    kind = file_kind(path)
    if kind == "png":
        from PIL import Image

        with Image.open(path) as image:  # reads the header only
            return image.size[1], image.size[0]
    if kind == "dicom":
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if kind == "nifti":
        import nibabel

        return tuple(nibabel.load(path).shape)
    return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)


def read_one(path: Path, options: FolderOptions) -> list[Slice]:
    """The slices of one file; any reader failure becomes a :class:`DataFolderError`."""
    try:
        return read_file(path, Path(path.name), options)
    except NotAnImage as reason:
        raise DataFolderError(str(reason)) from None
    except Unreadable as reason:  # a file that contradicts itself: its own words
        raise DataFolderError(f"unreadable: {reason}") from None
    except DataFolderError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure names the file
        raise DataFolderError(f"unreadable: {type(error).__name__}: {error}") from None


def pick_slice(slices: list[Slice], index: int | None) -> Slice:
    """The slice at ``index`` in its file (z of a volume, frame of a multi-frame file), by default the middle one."""
    if not slices:
        raise DataFolderError("the file holds no image slice.")
    if index is None:
        return slices[len(slices) // 2]
    for s in slices:
        if s.index == index:
            return s
    held = [s.index for s in slices]
    raise DataFolderError(f"--slice {index} is not among the file's slices ({min(held)} to {max(held)}, "
                          f"{len(held)} not blank).")


def series_siblings(path: Path, chosen: Slice, options: FolderOptions) -> list[Slice]:
    """The other slices of the DICOM series of ``chosen`` in the same folder (the MR intensity scale is the
    series')."""
    import pydicom

    siblings = []
    for other in sorted(path.parent.iterdir()):
        if other == path or file_kind(other) != "dicom":
            continue
        try:
            uid = str(pydicom.dcmread(other, stop_before_pixels=True).get("SeriesInstanceUID", ""))
            if uid and uid == chosen.volume:
                siblings += read_file(other, Path(other.name), options)
        except Exception:  # noqa: BLE001, S112 - a sibling that cannot be read does not set the scale
            continue
    return siblings


def to_source_units(scan: Scan, image: np.ndarray) -> np.ndarray:
    """A [0, 1] image back in the scan's units: HU through the window for CT, the volume's scale for MRI."""
    if scan.modality == "ct":
        low, high = scan.intensity.window
        return low + image * (high - low)
    return image * scan.top


def write_npy(path: Path, array: np.ndarray) -> None:
    """``numpy.save(path, array)``, atomically."""
    def write(temporary: Path) -> None:
        with open(temporary, "wb") as f:
            np.save(f, array)

    atomic_write(path, write)


def write_png(path: Path, image: np.ndarray, scale_to_max: bool = False) -> float:
    """An 8-bit greyscale PNG of ``image`` in [0, 1] (or of ``image / max`` with ``scale_to_max``); returns the
    scale."""
    from PIL import Image

    top = float(max(np.max(image), 1e-12)) if scale_to_max else 1.0
    png = Image.fromarray(np.round(255 * np.clip(image / top, 0, 1)).astype(np.uint8))
    atomic_write(path, lambda temporary: png.save(temporary, format="PNG"))
    return top


def write_summary(path: Path, scan: Scan, mean: np.ndarray, spread: np.ndarray, report: dict) -> None:
    """Truth, classical inverse, reconstruction, its error and the posterior spread, side by side."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend (a notebook's inline one) is left alone

    truth = scan.truth[0, 0].numpy()
    panels = [(truth, "truth", (0, 1)),
              (scan.classical[0, 0].numpy(), f"classical {report['psnr_classical']:.1f} dB", (0, 1)),
              (mean, f"{report['method']} {report['psnr_of_mean']:.1f} dB", (0, 1)),
              (np.abs(mean - truth), "|error|", (0, 0.2))]
    if spread is not None:
        panels.append((spread, f"posterior spread (r = {report['spread_error_correlation']:.2f} with the error)",
                       (0, 0.2)))
    fig = Figure(figsize=(2.6 * len(panels), 3))
    axes = fig.subplots(1, len(panels))
    for ax, (image, title, limits) in zip(axes, panels):
        ax.imshow(image, cmap="gray" if limits[1] == 1 else "magma", vmin=limits[0], vmax=limits[1])
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{report['setting']}, noise {report['noise']}, {report['samples']} samples, "
                 f"{report['nfe_per_sample']} NFE", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda temporary: fig.savefig(temporary, dpi=100, format="png"))


def write_like_input(out: Path, scan: Scan, mean: np.ndarray) -> str | None:
    """``recon.dcm`` for a single-frame DICOM input, ``recon.nii.gz`` for a NIfTI one (else None)."""
    if scan.kind == "dicom":
        return write_dicom(out / "recon.dcm", scan, mean)
    if scan.kind == "nifti":
        return write_nifti(out / "recon.nii.gz", scan, mean)
    return None


def grid_offset(scan: Scan, size: int) -> tuple[float, float, float]:
    """``(f, row0, col0)``: source pixels per output pixel, and the source (row, column) of output pixel (0, 0)'s
    centre (the square's padding removed)."""
    f = scan.side / size
    return f, 0.5 * f - 0.5 - scan.pads[0], 0.5 * f - 0.5 - scan.pads[1]


def write_dicom(path: Path, scan: Scan, mean: np.ndarray) -> str | None:
    """A derived DICOM: the input's header, the reconstruction in its units, pixel spacing and position scaled to the
    reconstruction grid, new series and instance UIDs. Multi-frame inputs are not written back (None)."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(scan.path)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return None
    size = mean.shape[0]
    values = to_source_units(scan, mean)
    if scan.modality == "ct":
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        pixels = np.clip(np.round(values), -32768, 32767).astype(np.int16)
    else:
        pixels = np.clip(np.round(values), 0, 65535).astype(np.uint16)
    for tag in ("SmallestImagePixelValue", "LargestImagePixelValue", "WindowCenter", "WindowWidth"):
        if tag in ds:
            delattr(ds, tag)
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=16)
    f, row0, col0 = grid_offset(scan, size)
    if "PixelSpacing" in ds:
        dr, dc = (float(v) for v in ds.PixelSpacing)
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            cosines = np.asarray(ds.ImageOrientationPatient, dtype=float)
            moved = np.asarray(ds.ImagePositionPatient, float) + col0 * dc * cosines[:3] + row0 * dr * cosines[3:]
            ds.ImagePositionPatient = [round(float(v), 4) for v in moved]
        ds.PixelSpacing = [round(dr * f, 6), round(dc * f, 6)]
    if scan.modality == "ct":
        low, high = scan.intensity.window
        ds.WindowCenter, ds.WindowWidth = (low + high) / 2, high - low
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SeriesDescription = "recon-book reconstruction"
    ds.DerivationDescription = "score-based reconstruction from simulated measurements (recon-book)"
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    atomic_write(path, lambda temporary: ds.save_as(temporary, enforce_file_format=True))
    return path.name


def write_nifti(path: Path, scan: Scan, mean: np.ndarray) -> str:
    """A one-slice NIfTI in the input's (canonical) space: the reconstruction turned back from the radiological view
    to voxel order, with an affine that places its voxels where they lie in the input volume."""
    import nibabel

    image = nibabel.as_closest_canonical(nibabel.load(scan.path))
    size = mean.shape[0]
    f, row0, col0 = grid_offset(scan, size)
    n1 = scan.source.pixels.shape[0]  # the view's rows run along -y: view row r is voxel y = n1 - 1 - r
    to_source = np.array([[f, 0, 0, col0], [0, f, 0, n1 - 1 - row0 - (size - 1) * f], [0, 0, 1, scan.index],
                          [0, 0, 0, 1]])
    voxels = np.rot90(to_source_units(scan, mean), -1)[:, :, None].astype(np.float32)
    data = nibabel.Nifti1Image(voxels, image.affine @ to_source).to_bytes()
    atomic_write(path, lambda temporary: temporary.write_bytes(gzip.compress(data) if path.name.endswith(".gz")
                                                               else data))
    return path.name
