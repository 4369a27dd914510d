"""Axial brain slices from the MNI152 (ICBM 2009a) template shipped with nilearn, with tissue-contrast augmentation.

Training and test images come from disjoint axial slabs separated by at least 6 mm, so no test slice is a near-copy
of a training slice. The test slab lies between two training slabs (in-distribution anatomy); validation images are
other draws (levels and augmentations) from the test slab, so that a value tuned on them is tuned for the test
distribution. A second test split, ``test_shift``, holds the bodies of the lateral ventricles, a level no training slab
shows (anatomy shift). Each image mixes the template's grey-matter, white-matter and CSF probability maps with random
T1-like contrasts, then applies a random affine map, a smooth elastic warp and a smooth bias field.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.ndimage as ndi
import torch

from recon.data.splits import check_request, split_rng

FAMILY = 29

# Axial slabs (voxel index along z, 1 mm; z = 100 is about 28 mm above the AC, the bodies of the lateral ventricles).
# Until commit 4e13b21 the test split was (94, 106) and training covered (40, 88): that test set is test_shift now.
# Until 2026-12-06 validation had its own slab, (112, 118), whose images were easier to reconstruct than the test slab's
# (zero-filled MRI 8x: 18.2 against 17.5 dB on 48 images): it now draws from the test slab.
SLABS = {"train": ((40, 58), (76, 88), (124, 140)), "val": ((64, 70),), "test": ((64, 70),),
         "test_shift": ((94, 106),)}
GAP_MM = 6
FIELD_OF_VIEW_MM = 196


@functools.lru_cache(maxsize=1)
def _tissue_maps() -> np.ndarray:
    """Grey matter, white matter and CSF probability maps, ``(3, X, Y, Z)`` float32 (nilearn ships them; no download)."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1).get_fdata()
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata()
    csf = np.clip((t1 > 0).astype(np.float64) - gm - wm, 0.0, 1.0)  # brain mask minus tissue: ventricles and sulci
    return np.stack([gm, wm, csf]).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _prepared(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Tissue maps low-pass filtered in-plane for sampling at ``size`` pixels, and the brain centre in voxels."""
    maps = _tissue_maps()
    sigma = 0.45 * FIELD_OF_VIEW_MM / size  # anti-aliasing before resampling to the output grid
    blurred = np.stack([ndi.gaussian_filter(m, (sigma, sigma, 0.0)) for m in maps])
    tissue = maps[0] + maps[1]
    xs, ys, _ = np.nonzero(tissue > 0.5)
    return blurred, np.array([xs.mean(), ys.mean()])


def _smooth_field(rng: np.random.Generator, size: int, amplitude: float) -> np.ndarray:
    field = ndi.gaussian_filter(rng.normal(size=(size, size)), size / 8, mode="wrap")
    return field * (amplitude / (np.abs(field).max() + 1e-12))


@dataclasses.dataclass(frozen=True)
class BrainSlice:
    """The continuous description of one augmented slice: axial position ``z`` (voxels), in-plane rotation (radians),
    scales and shift of the affine map, the elastic warp (two smooth fields drawn on a ``base`` grid, interpolated to
    any other), tissue contrasts (grey matter, white matter, CSF) and the bias field's coefficients."""

    z: float
    angle: float
    scale: np.ndarray
    shift: np.ndarray
    warp: tuple[np.ndarray, np.ndarray]
    contrast: np.ndarray
    bias: np.ndarray


def draw_brain_slice(rng: np.random.Generator, z: float, base: int) -> BrainSlice:
    """Draw a slice's augmentation from ``rng`` (the order of draws is part of the data's definition)."""
    angle = np.deg2rad(rng.uniform(-10, 10))
    scale, shift = rng.uniform(0.92, 1.08, size=2), rng.uniform(-0.03, 0.03, size=2)
    warp = (_smooth_field(rng, base, 0.025), _smooth_field(rng, base, 0.025))
    contrast = rng.uniform([0.45, 0.80, 0.05], [0.65, 1.00, 0.25])
    return BrainSlice(z, angle, scale, shift, warp, contrast, rng.normal(0, 0.08, size=5))


def render_brain_slice(params: BrainSlice, size: int) -> np.ndarray:
    """The slice on a ``size x size`` grid, anterior up, max value 1; tissue maps anti-aliased for that grid."""
    maps, centre = _prepared(size)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(coords, coords, indexing="ij")
    warp_u, warp_v = (w if w.shape[0] == size else ndi.zoom(w, size / w.shape[0], order=3, mode="grid-wrap")
                      for w in params.warp)
    c, s = np.cos(params.angle), np.sin(params.angle)
    uu = params.scale[0] * (c * u - s * v) + params.shift[0] + warp_u
    vv = params.scale[1] * (s * u + c * v) + params.shift[1] + warp_v
    half = FIELD_OF_VIEW_MM / 2
    points = np.stack([centre[0] + uu * half, centre[1] - vv * half, np.full_like(uu, params.z)])  # anterior up
    gm, wm, csf = (ndi.map_coordinates(m, points, order=1, mode="constant", cval=0.0) for m in maps)
    bias = np.exp(params.bias @ np.stack([u, v, u * v, u**2 - 1 / 3, v**2 - 1 / 3]).reshape(5, -1))
    image = (params.contrast[0] * gm + params.contrast[1] * wm + params.contrast[2] * csf) * bias.reshape(size, size)
    return image / image.max()


def brain_slice(size: int, z: float, rng: np.random.Generator) -> np.ndarray:
    """One augmented slice at axial position ``z`` (voxels), ``size x size``, anterior up, max value 1."""
    return render_brain_slice(draw_brain_slice(rng, z, size), size)


def brain_slices(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` augmented axial brain slices ``(n, 1, size, size)`` in [0, 1] from the ``split``'s slabs.

    Slabs (axial voxel ranges, 1 mm): train {SLABS[train]}, test {SLABS[test]} (between training slabs:
    in-distribution) and val {SLABS[val]} (other draws from the test slab), test_shift {SLABS[test_shift]} (a level
    training never shows: anatomy shift); at least 6 mm separate any two distinct slabs. Image ``i`` depends only on
    ``(split, seed, i)``.
    """
    check_request(n, size, split, seed, splits=tuple(SLABS))
    images = [render_brain_slice(brain_slice_params(split, seed, i, size), size) for i in range(n)]
    return torch.from_numpy(np.stack(images)[:, None].astype(np.float32))


def brain_slice_params(split: str, seed: int, index: int, base: int) -> BrainSlice:
    """The description of image ``index`` of a split: a slab drawn in proportion to its thickness, a level in it,
    and the augmentation (its warp drawn on a ``base`` grid, the size the slice is usually rendered at)."""
    rng = split_rng(split, seed, index, FAMILY)
    return draw_brain_slice(rng, slab_level(rng, split), base)


def slab_level(rng: np.random.Generator, split: str) -> float:
    """An axial level of one of the split's slabs, the slab drawn in proportion to its thickness (two draws)."""
    slabs = np.array(SLABS[split], dtype=np.float64)
    lengths = slabs[:, 1] - slabs[:, 0]
    lo, hi = slabs[rng.choice(len(slabs), p=lengths / lengths.sum())]
    return rng.uniform(lo, hi)


brain_slices.__doc__ = brain_slices.__doc__.format(SLABS=SLABS)


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family, renderer

register_family(Family("brain", brain_slices, renderer(brain_slice_params, render_brain_slice, drawn_at_size=True),
                       prior="brain", description="augmented axial MNI152 brain slices from disjoint slabs"))
