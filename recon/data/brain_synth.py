"""Synthetic heads that never repeat: the ``brain_synth`` family, drawn the way SynthSeg (Billot et al., Medical Image
Analysis 2023) learns from few subjects, with a new random "head" per image.

Each image is a 2-D cut through one of three source volumes, then changed in geometry, contrast and acquisition:

- sources: ``mni_tissue`` (the MNI152 grey-matter, white-matter and CSF probability maps; each class gets a random
  intensity, so the maps' soft edges give partial volume), ``mni_t1`` (the MNI152 T1 template's intensities) and
  ``colin27`` (one real adult's T1 head with scalp and skull; :mod:`recon.data.archives`); the two intensity volumes
  pass through a random **transfer curve** that maps their T1 intensities to T1-, T2-, PD-like or random contrasts,
  the intensity-volume counterpart of SynthSeg's random per-label means;
- geometry: axial, coronal or sagittal cuts at any level (MNI152 axial cuts only at the ``brain`` family's
  training levels, so its validation and test slabs stay unseen in that plane), a field of view of 0.75-1.3 x 196 mm
  or a zoomed crop (0.35-0.7 x) anywhere within 50 mm of the head's centre, a random affine map (rotation, scales,
  shear, shift) and a random smooth **diffeomorphic** warp (a stationary velocity field integrated by scaling and
  squaring, so the map is invertible and folds nothing);
- acquisition: slice thickness (1-6 mm, averaged along the cut's normal), in-plane resolution loss (half the slices: a Gaussian
  of up to 1 pixel per axis), a smooth multiplicative bias field, a random gamma and Rician noise (up to 0.03 of the
  slice's 99.5th percentile, drawn on the base grid so a finer rendering has the same noise); every slice is
  divided by its 99.5th percentile and clipped to [0, 1] (the ``mr_percentile`` rule of :mod:`recon.data.intensity`).

The splits are independent draws of the same generator (``split_rng``): held-out draws test memorisation of images,
and the ``brain`` family's MNI152 test slabs and the real scans of :mod:`recon.data.real_scans` (people never used
for training) test generalisation to anatomy.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import scipy.ndimage as ndi
import torch

from recon.data.brain import FIELD_OF_VIEW_MM, _tissue_maps, slab_level
from recon.data.brain_real import (
    FOV_BINS,
    ORIENTATIONS,
    _centre,
    _level_range,
    _prepared,
    _volume,
    add_rician_noise,
    check_base_grid,
)
from recon.data.splits import check_request, split_rng

FAMILY = 41
SOURCES = {"mni_tissue": 0.35, "mni_t1": 0.15, "colin27": 0.5}
CONTRASTS = {"t1": 0.5, "t2": 0.2, "pd": 0.1, "random": 0.2}
# Mean intensity ranges of (grey matter, white matter, CSF) per contrast of the tissue source.
TISSUE_MEANS = {"t1": ([0.45, 0.80, 0.05], [0.65, 1.00, 0.25]), "t2": ([0.50, 0.25, 0.80], [0.70, 0.45, 1.00]),
                "pd": ([0.75, 0.55, 0.70], [0.95, 0.75, 0.90]), "random": ([0.0] * 3, [1.0] * 3)}
KNOTS = np.array([0.0, 0.08, 0.25, 0.45, 0.65, 0.85, 1.05, 1.6])  # T1 intensities (99.5th percentile = 1)
VELOCITY_GRID = 6
SQUARINGS = 5
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class SynthSlice:
    """One synthetic slice: source and cut (orientation, level in voxels, thickness in mm, field of view and its
    offset in mm), geometry (rotation, scales, shear, shift, a coarse velocity field), contrast (per-class means for
    the tissue source, transfer-curve values at :data:`KNOTS` for the others), and acquisition (resolution blur in
    base-grid pixels, bias coefficients, gamma, noise level and base-grid normal noise)."""

    source: str
    orientation: str
    level: float
    thickness_mm: float
    fov_mm: float
    offset_mm: tuple[float, float]
    angle: float
    scale: np.ndarray
    shear: float
    shift: np.ndarray
    velocity: np.ndarray
    contrast: np.ndarray
    blur: np.ndarray
    bias: np.ndarray
    gamma: float
    noise_sigma: float
    noise: np.ndarray


def transfer_curve(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Values of a T1-to-output intensity map at :data:`KNOTS` (air stays dark): ``t1`` keeps the order with jitter,
    ``t2`` and ``pd`` invert or flatten the brain's range, ``random`` draws every knot (SynthSeg's random means)."""
    x = KNOTS[1:]
    if kind == "t1":
        values = np.sort(np.clip(x / x[-2] + rng.normal(0, 0.06, x.size), 0, 1.2))
    elif kind == "t2":  # CSF (~0.25) bright, grey above white matter (~0.75), fat (above 0.9) fairly bright
        values = np.array([0.25, 1.0, 0.7, 0.45, 0.35, 0.7, 0.8]) + rng.normal(0, 0.07, x.size)
    elif kind == "pd":
        values = np.array([0.35, 0.75, 0.95, 0.85, 0.75, 0.9, 0.95]) + rng.normal(0, 0.07, x.size)
    else:
        values = rng.uniform(0.05, 1.0, x.size)
    return np.concatenate([[0.0], np.clip(values, 0.02, None)])


def draw_cut(rng: np.random.Generator, source: str) -> tuple[str, float, float, tuple[float, float]]:
    """Orientation, level (voxels), field of view (mm) and its offset (mm) of a cut through ``source``."""
    orientation = str(rng.choice(list(ORIENTATIONS), p=list(ORIENTATIONS.values())))
    volume = "colin27" if source == "colin27" else "mni_t1"
    if orientation == "axial" and source != "colin27":
        level = slab_level(rng, "train")  # the brain family's validation and test slabs stay unseen axially
    else:
        level = rng.uniform(*_level_range(volume, orientation))
    zoomed = rng.uniform() < 0.25
    fov = FIELD_OF_VIEW_MM * (rng.uniform(0.35, 0.7) if zoomed else rng.uniform(0.75, 1.3))
    offset = tuple(rng.uniform(-50.0, 50.0, size=2)) if zoomed else (0.0, 0.0)
    return orientation, level, fov, offset


def draw_synth_slice(split: str, seed: int, index: int, base: int) -> SynthSlice:
    """The description of image ``index`` of a split (the order of draws is part of the data's definition)."""
    if split not in SPLITS:
        raise ValueError(f"brain_synth has the splits {list(SPLITS)}; got {split!r}.")
    rng = split_rng(split, seed, index, FAMILY)
    source = str(rng.choice(list(SOURCES), p=list(SOURCES.values())))
    orientation, level, fov, offset = draw_cut(rng, source)
    geometry = {"angle": np.deg2rad(rng.uniform(-15, 15)), "scale": rng.uniform(0.85, 1.15, size=2),
                    "shear": rng.uniform(-0.08, 0.08), "shift": rng.uniform(-0.05, 0.05, size=2),
                    "velocity": rng.normal(0, 1, size=(2, VELOCITY_GRID, VELOCITY_GRID)) * rng.uniform(0.0, 0.035)}
    kind = str(rng.choice(list(CONTRASTS), p=list(CONTRASTS.values())))
    contrast = rng.uniform(*TISSUE_MEANS[kind]) if source == "mni_tissue" else transfer_curve(rng, kind)
    return SynthSlice(source, orientation, level, rng.uniform(1.0, 6.0), fov, offset, **geometry, contrast=contrast,
                      blur=rng.uniform(0.0, 1.0, size=2) * (rng.uniform() < 0.5), bias=rng.normal(0, 0.12, size=5),
                      gamma=float(np.exp(rng.normal(0, 0.15))), noise_sigma=rng.uniform(0.0, 0.03),
                      noise=rng.normal(size=(2, base, base)))


def diffeomorphism(velocity: np.ndarray, size: int) -> np.ndarray:
    """The displacement ``(2, size, size)`` (in [-1, 1] units) of the map exp(v) of a stationary velocity field given
    on a coarse grid, by scaling and squaring: phi = (id + v / 2^K) composed with itself K times."""
    field = np.stack([ndi.zoom(c, size / c.shape[0], order=3, mode="nearest") for c in velocity]) / 2**SQUARINGS
    pixels = np.mgrid[0:size, 0:size].astype(np.float64)
    for _ in range(SQUARINGS):
        at = pixels + field[::-1] * size / 2  # displacement in pixels, (row, column) = (v, u)
        field = field + np.stack([ndi.map_coordinates(c, at, order=1, mode="nearest") for c in field])
    return field


@functools.lru_cache(maxsize=16)
def _tissue_prepared(fov_mm: float, size: int) -> np.ndarray:
    """The MNI152 tissue maps low-pass filtered isotropically for sampling at ``size`` pixels over ``fov_mm``."""
    return np.stack([ndi.gaussian_filter(m, 0.45 * fov_mm / size) for m in _tissue_maps()])


def sample_cut(params: SynthSlice, u: np.ndarray, v: np.ndarray, size: int) -> np.ndarray:
    """The source's values (one map per tissue class, or one intensity map) on the cut's warped grid, averaged over
    the slice thickness: ``(classes, size, size)``."""
    fov = FOV_BINS[np.abs(FOV_BINS - params.fov_mm).argmin()]
    volume = "colin27" if params.source == "colin27" else "mni_t1"
    maps = _tissue_prepared(fov, size) if params.source == "mni_tissue" else _prepared(volume, size, fov)[None]
    centre = _centre(volume)
    uu, vv = u * params.fov_mm / 2 + params.offset_mm[0], v * params.fov_mm / 2 + params.offset_mm[1]
    out = np.zeros((len(maps), size, size))
    for level in params.level + params.thickness_mm / 2 * np.array([-1.0, 0.0, 1.0]):
        flat = np.full_like(uu, level)
        points = {"axial": (centre[0] + uu, centre[1] - vv, flat), "coronal": (centre[0] + uu, flat, centre[2] - vv),
                  "sagittal": (flat, centre[1] + uu, centre[2] - vv)}[params.orientation]
        out += np.stack([ndi.map_coordinates(m, np.stack(points), order=1, mode="constant") for m in maps])
    return out / 3


def render_synth_slice(params: SynthSlice, size: int) -> np.ndarray:
    """The slice on a ``size x size`` grid (anterior or superior up), divided by its 99.5th percentile, in [0, 1]."""
    check_base_grid(params.noise.shape[-1], size)
    factor = size // params.noise.shape[-1]
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(coords, coords, indexing="ij")
    warp = diffeomorphism(params.velocity, size)
    c, s = np.cos(params.angle), np.sin(params.angle)
    uw, vw = u + warp[0], v + warp[1]
    uu = params.scale[0] * (c * uw - s * vw + params.shear * vw) + params.shift[0]
    vv = params.scale[1] * (s * uw + c * vw) + params.shift[1]
    cut = sample_cut(params, uu, vv, size)
    if params.source == "mni_tissue":
        image = np.tensordot(params.contrast, cut, axes=1)
    else:
        image = np.interp(cut[0], KNOTS, params.contrast)
    image = ndi.gaussian_filter(image, params.blur[::-1] * factor)
    bias = np.exp(params.bias @ np.stack([u, v, u * v, u**2 - 1 / 3, v**2 - 1 / 3]).reshape(5, -1))
    image = np.clip(image * bias.reshape(size, size), 0.0, None) ** params.gamma
    return add_rician_noise(image, params.noise, params.noise_sigma)


def _render_range(args: tuple) -> np.ndarray:
    split, seed, start, stop, size = args
    return np.stack([render_synth_slice(draw_synth_slice(split, seed, i, size), size) for i in range(start, stop)])


def brain_synth_slices(n: int, size: int = 64, split: str = "train", seed: int = 0,
                       workers: int | None = None) -> torch.Tensor:
    """``n`` synthetic slices ``(n, 1, size, size)`` in [0, 1] (module docstring); image ``i`` depends only on
    ``(split, seed, i)``, whatever ``workers`` (processes rendering in parallel; default: every core from 2,048
    images up). Colin27 is fetched on first use."""
    check_request(n, size, split, seed, splits=SPLITS)
    workers = (os.cpu_count() or 1) if workers is None and n >= 2048 else (workers or 1)
    chunks = [(split, seed, start, min(start + 256, n), size) for start in range(0, n, 256)]
    if workers > 1 and len(chunks) > 1:
        import multiprocessing

        _volume("colin27"), _volume("mni_t1"), _tissue_maps()  # fetched and cached before the workers fork
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_render_range, chunks)
    else:
        parts = [_render_range(chunk) for chunk in chunks]
    return torch.from_numpy(np.concatenate(parts)[:, None].astype(np.float32))


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family, renderer

register_family(Family("brain_synth", brain_synth_slices, renderer(draw_synth_slice, render_synth_slice,
                                                                   drawn_at_size=True),
                       prior="brain_synth", intensity="mr_percentile",
                       description="SynthSeg-style heads: MNI152 and Colin27 cut anywhere, warped, random contrasts"))
