"""Brain MR slices for a prior that has seen a real head: the MNI152 family of :mod:`recon.data.brain` mixed with the
real intensities of two volumes, each under the same affine, elastic and bias-field augmentation.

Sources (``SOURCES``) and where they may appear:

- ``tissue``: the MNI152 tissue-map synthesis of :mod:`recon.data.brain` (random T1-like contrasts), axial, in each
  split's slabs;
- ``mni_t1``: the MNI152 2009a T1 template's own intensities (an average of 152 real adults, brain only), axial, in
  each split's slabs;
- ``colin27``: Colin27, one real adult's T1 head MRI with scalp and skull (MRIcron's ``ch2``; fetched from Debian, see
  :mod:`recon.data.archives`), **training split only**, at any level and in any of the three orientations (axial,
  coronal, sagittal), with a wider field of view (0.9-1.3 x 196 mm) or, one slice in three, a zoomed crop
  (0.3-0.7 x 196 mm) centred anywhere within 50 mm of the head's centre, as a scanner's smaller field of view shows.

Validation and test images come from the MNI152 sources in the test slab (other draws for each split; no MNI152
training slice crosses it: the non-axial slices come from Colin27 only).
Colin27's training slices do pass through the levels of those slabs, but in another person's head. Its volume ends
40 mm below the AC line, so wide coronal and sagittal views show a straight cut there (a scanner's field of view
shows such edges too). Real-valued
sources get a random gamma (0.75-1.35) and mild Rician noise (sigma up to 0.02 of the slice's 99.5th percentile, drawn on
the base grid so a finer rendering has the same noise); every slice is divided by its 99.5th percentile and clipped
to [0, 1]: the ``mr_percentile`` rule of :mod:`recon.data.intensity`, which :func:`recon.data.ood.mr_small` and the
real-scan study apply to a real slice.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.ndimage as ndi
import torch

from recon.data.brain import FIELD_OF_VIEW_MM, BrainSlice, draw_brain_slice, render_brain_slice, slab_level
from recon.data.intensity import MR_PERCENTILE, percentile_to_unit, percentile_top
from recon.data.splits import check_request, split_rng

FAMILY = 37
PROBABILITIES = {"train": {"tissue": 0.3, "mni_t1": 0.2, "colin27": 0.5}, "val": {"tissue": 0.6, "mni_t1": 0.4},
                 "test": {"tissue": 0.6, "mni_t1": 0.4}}
ORIENTATIONS = {"axial": 0.5, "coronal": 0.25, "sagittal": 0.25}
FOV_BINS = FIELD_OF_VIEW_MM * np.array([0.35, 0.5, 0.7, 0.9, 1.0, 1.1, 1.3])  # anti-aliasing filters prepared once per bin and size


@functools.lru_cache(maxsize=2)
def _volume(name: str) -> np.ndarray:
    """A canonical (RAS) 1 mm intensity volume scaled by its 99.5th percentile: ``mni_t1``, the MNI152 T1 template
    (nilearn ships it), or ``colin27`` (fetched from Debian; only the training split asks for it)."""
    if name == "mni_t1":
        from nilearn import datasets

        mni = datasets.load_mni152_template(resolution=1).get_fdata().astype(np.float32)
        return mni / np.percentile(mni[mni > 0], MR_PERCENTILE)
    import nibabel as nib

    from recon.data.archives import archive_file

    colin = nib.as_closest_canonical(nib.load(archive_file("colin27"))).get_fdata().astype(np.float32)
    return colin / np.percentile(colin, MR_PERCENTILE)


@functools.lru_cache(maxsize=32)
def _prepared(name: str, size: int, fov_mm: float) -> np.ndarray:
    """The volume low-pass filtered (isotropically: any orientation may be cut) for sampling at ``size`` pixels."""
    return ndi.gaussian_filter(_volume(name), 0.45 * fov_mm / size)


@functools.lru_cache(maxsize=2)
def _centre(name: str) -> np.ndarray:
    volume = _volume(name)
    return np.array(ndi.center_of_mass(volume > 0.1))


@dataclasses.dataclass(frozen=True)
class RealSlice:
    """One slice of a real-intensity volume: its source and orientation, the position along the slice normal (voxels),
    the field of view (mm), the shared augmentation (affine, warp, bias), a gamma, and base-grid noise."""

    source: str
    orientation: str
    level: float
    fov_mm: float
    offset_mm: tuple[float, float]  # in-plane shift of the field of view's centre from the head's centre
    augment: BrainSlice
    gamma: float
    noise_sigma: float
    noise: np.ndarray  # (2, base, base) standard normal: real and imaginary parts


def _level_range(name: str, orientation: str) -> tuple[float, float]:
    axis = {"sagittal": 0, "coronal": 1, "axial": 2}[orientation]
    inside = np.nonzero((_volume(name) > 0.1).any(axis=tuple(a for a in range(3) if a != axis)))[0]
    lo, hi = inside.min(), inside.max()
    return lo + 0.15 * (hi - lo), hi - 0.1 * (hi - lo)  # leave out the caps: a slice of scalp alone teaches nothing


def draw_real_slice(rng: np.random.Generator, source: str, split: str, base: int) -> RealSlice:
    if source == "colin27":
        orientation = str(rng.choice(list(ORIENTATIONS), p=list(ORIENTATIONS.values())))
        level = rng.uniform(*_level_range(source, orientation))
        zoomed = rng.uniform() < 1 / 3
        fov = FIELD_OF_VIEW_MM * (rng.uniform(0.3, 0.7) if zoomed else rng.uniform(0.9, 1.3))
        offset = tuple(rng.uniform(-50.0, 50.0, size=2)) if zoomed else (0.0, 0.0)
    else:
        orientation, fov, offset = "axial", FIELD_OF_VIEW_MM, (0.0, 0.0)
        level = slab_level(rng, split)
    augment = draw_brain_slice(rng, level, base)
    gamma = rng.uniform(0.75, 1.35)
    sigma = rng.uniform(0.0, 0.02)
    return RealSlice(source, orientation, level, fov, offset, augment, gamma, sigma, rng.normal(size=(2, base, base)))


def render_real_slice(params: RealSlice, size: int) -> np.ndarray:
    """The slice on a ``size x size`` grid (superior or anterior up), divided by its 99.5th percentile, in [0, 1]."""
    a = params.augment
    volume = _prepared(params.source, size, FOV_BINS[np.abs(FOV_BINS - params.fov_mm).argmin()])
    centre = _centre(params.source)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(coords, coords, indexing="ij")
    warp_u, warp_v = (w if w.shape[0] == size else ndi.zoom(w, size / w.shape[0], order=3, mode="grid-wrap")
                      for w in a.warp)
    c, s = np.cos(a.angle), np.sin(a.angle)
    uu = (a.scale[0] * (c * u - s * v) + a.shift[0] + warp_u) * params.fov_mm / 2 + params.offset_mm[0]
    vv = (a.scale[1] * (s * u + c * v) + a.shift[1] + warp_v) * params.fov_mm / 2 + params.offset_mm[1]
    level = np.full_like(uu, params.level)
    points = {"axial": (centre[0] + uu, centre[1] - vv, level),  # anterior up
              "coronal": (centre[0] + uu, level, centre[2] - vv),  # superior up
              "sagittal": (level, centre[1] + uu, centre[2] - vv)}[params.orientation]
    image = ndi.map_coordinates(volume, np.stack(points), order=1, mode="constant", cval=0.0)
    bias = np.exp(a.bias @ np.stack([u, v, u * v, u**2 - 1 / 3, v**2 - 1 / 3]).reshape(5, -1)).reshape(size, size)
    image = np.clip(image * bias, 0.0, None) ** params.gamma
    check_base_grid(params.noise.shape[-1], size)
    return add_rician_noise(image, params.noise, params.noise_sigma)


def check_base_grid(base: int, size: int) -> None:
    if size % base:
        raise ValueError(f"render a slice drawn on a {base}-pixel grid at a multiple of {base} pixels; got {size}.")


def add_rician_noise(image: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """Scale by the 99.5th percentile, add Rician noise drawn on the base grid (``noise``: ``(2, base, base)``
    standard normal), and scale again to [0, 1]; the percentiles are taken on the base grid, so a finer rendering
    keeps the base rendering's scale."""
    base = noise.shape[-1]
    factor = image.shape[-1] // base

    def on_base(x):
        return x.reshape(base, factor, base, factor).mean(axis=(1, 3)) if factor > 1 else x

    image = image / percentile_top(on_base(image), floor=1e-6)
    noise = np.kron(noise, np.ones((factor, factor))) if factor > 1 else noise
    image = np.hypot(image + sigma * noise[0], sigma * noise[1])
    return percentile_to_unit(image, top=percentile_top(on_base(image), floor=1e-6))


def brain_real_params(split: str, seed: int, index: int, base: int):
    """Image ``index`` of a split: its source, then that source's description (``BrainSlice`` or ``RealSlice``)."""
    if split not in PROBABILITIES:
        raise ValueError(f"brain_real has the splits {list(PROBABILITIES)}; got {split!r} (the anatomy-shift slabs are "
                         "the brain family's: use dataset 'brain' for test_shift).")
    rng = split_rng(split, seed, index, FAMILY)
    probabilities = PROBABILITIES[split]
    source = str(rng.choice(list(probabilities), p=list(probabilities.values())))
    if source == "tissue":
        return draw_brain_slice(rng, slab_level(rng, split), base)
    return draw_real_slice(rng, source, split, base)


def render_brain_real(params, size: int) -> np.ndarray:
    if isinstance(params, BrainSlice):
        return render_brain_slice(params, size)
    return render_real_slice(params, size)


def brain_real_slices(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` slices ``(n, 1, size, size)`` in [0, 1] of the mixed family (module docstring); image ``i`` depends only on
    ``(split, seed, i)``. The training split needs Colin27 (fetched from Debian on first use)."""
    check_request(n, size, split, seed, splits=tuple(PROBABILITIES))
    images = [render_brain_real(brain_real_params(split, seed, i, size), size) for i in range(n)]
    return torch.from_numpy(np.stack(images)[:, None].astype(np.float32))


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family, renderer

register_family(Family("brain_real", brain_real_slices, renderer(brain_real_params, render_brain_real,
                                                                 drawn_at_size=True),
                       prior="brain_real", intensity="mr_percentile",
                       description="MNI152 synthesis mixed with real T1 intensities (MNI152 T1, Colin27)"))
