"""Head-CT phantoms in Hounsfield units, seen through a display window as real scans are read.

The book's first phantoms (:mod:`recon.data.phantoms`) use contrasts chosen for visibility: cerebrospinal fluid at 0.18
and grey matter at 0.52 of the display range. A real head CT read through the soft-tissue window of
:mod:`recon.data.intensity` (−160 to 240 HU) has grey matter near 0.50, white matter 0.46 and CSF 0.42, with texture,
sulci, a head holder under the head and other fields of view. This family draws the same anatomy (pose, skull,
ventricles, lesions from :func:`recon.data.phantoms.draw_head_ct`) and adds what real scans show:

* tissue in HU from the radiology literature's typical values (grey 37, white 27, CSF 5, scalp soft tissue 30 with a
  fat layer at −100, bone 1000 and above, acute blood 55–80, infarct 10–20);
* cortical sulci: CSF clefts running inwards from the brain surface, and a thin subarachnoid CSF rim;
* parenchymal texture: a smooth random field of a few HU, defined in continuous coordinates (so every resolution
  renders the same texture);
* a head holder (a plastic shell under the back of the head) and a table, present in most images;
* fields of view from tight to loose (head size 0.75–1.1 of the first family's), tilts up to ±0.5 rad, skulls 1 to
  2.2 times as thick (slices towards the vertex cut the skull obliquely);
* windows varied around −160 to 240 HU (centre ±15 HU, width ×0.9–1.1).

Partial volume comes from supersampling: the window is applied to the supersampled HU map and the result averaged,
as a real scan is windowed and then resized. Values in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from recon.data.intensity import CT_WINDOW, window_to_unit
from recon.data.phantoms import HeadCT, _ellipse_distance, _head_frame, _smooth_sigmoid, _ventricles, draw_head_ct
from recon.data.splits import check_request, split_rng

FAMILY = 41  # entropy word of this data family
SUPERSAMPLE = 4
HU = {"air": -1000.0, "fat": -100.0, "soft": 30.0, "bone": 1200.0, "grey": 37.0, "white": 27.0, "csf": 5.0,
      "holder": 120.0, "table": 300.0}


@dataclasses.dataclass(frozen=True)
class HeadCTHU:
    """One phantom: the first family's anatomy, rescaled and turned, plus sulci, texture, holder and window."""

    head: HeadCT
    sulci: tuple[tuple[float, float, float], ...]  # (angle, depth, width) in normalised units
    texture: tuple[tuple[float, float, float, float], ...]  # (kx, ky, phase, amplitude in HU)
    holder: tuple[float, float] | None  # (gap below the scalp, thickness), or no holder
    table: float | None  # height of the table top (negative: below the centre), or no table
    window: tuple[float, float]
    lesion_hu: tuple[float, ...]
    skull_scale: float = 1.0  # skull thickness relative to the first family's (thicker towards the vertex)


def draw_head_ct_hu(rng: np.random.Generator) -> HeadCTHU:
    """Draw a phantom's parameters from ``rng`` (the order of draws is part of the data's definition)."""
    base = draw_head_ct(rng)
    scale = rng.uniform(0.75, 1.1)
    head = dataclasses.replace(base, angle=rng.uniform(-0.5, 0.5),
                               semi_axes=tuple(scale * s for s in base.semi_axes),
                               centre=tuple(scale * c + rng.uniform(-0.04, 0.04) for c in base.centre))
    sulci = tuple((rng.uniform(0, 2 * math.pi), rng.uniform(0.04, 0.14), rng.uniform(0.006, 0.016))
                  for _ in range(int(rng.integers(14, 28))))
    texture = tuple((*(rng.normal(0, 14.0, size=2)), rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 2.0))
                    for _ in range(24))
    holder = (rng.uniform(0.0, 0.03), rng.uniform(0.015, 0.035)) if rng.uniform() < 0.7 else None
    table = -rng.uniform(0.85, 0.97) if rng.uniform() < 0.6 else None
    low, high = CT_WINDOW
    centre, width = (low + high) / 2 + rng.uniform(-15, 15), (high - low) * rng.uniform(0.9, 1.1)
    lesion_hu = tuple(rng.uniform(55, 80) if lesion.level > 0.5 else rng.uniform(10, 20) for lesion in base.lesions)
    skull_scale = rng.uniform(1.0, 2.2)
    return HeadCTHU(head, sulci, texture, holder, table, (centre - width / 2, centre + width / 2), lesion_hu,
                    skull_scale)


def _frame(head: HeadCT, n: int):
    """Image coordinates ``u, v`` (v up) of the pixel centres, then the head frame of the first family."""
    coords = (np.arange(n) + 0.5) / n * 2 - 1
    v, u = np.meshgrid(-coords, coords, indexing="ij")
    return (u, v, *_head_frame(head, n))


def _layers(params: HeadCTHU, rho, phi, edge: float):
    """HU of scalp (skin over fat), skull, subarachnoid CSF and brain (grey over white); the brain mask."""
    head = params.head
    skull_t = 0.07 + sum(amp * np.cos(k * phi + phase) for k, (amp, phase) in enumerate(head.skull_terms, 1))
    skull_out = 1.0 - head.scalp
    inner = skull_out - params.skull_scale * np.clip(skull_t, 0.04, 0.11)
    brain_edge = inner - 0.015
    inside = lambda r: _smooth_sigmoid(rho - r, edge)
    hu = HU["air"] + (HU["soft"] - HU["air"]) * inside(1.0)
    hu += (HU["fat"] - HU["soft"]) * inside(1.0 - 0.4 * head.scalp) * (1 - inside(skull_out))
    hu += (HU["bone"] - hu) * inside(skull_out)
    hu += (HU["csf"] - hu) * inside(inner)
    brain = inside(brain_edge)
    cortex_depth = 0.10 + 0.04 * np.sin(head.gyri * phi + head.gyri_phase)
    white = _smooth_sigmoid(rho - (brain_edge - cortex_depth), 4 * edge)
    hu += (HU["grey"] + (HU["white"] - HU["grey"]) * white + 200 * head.tissue_offset - hu) * brain
    return hu, brain, brain_edge


def _sulci(params: HeadCTHU, rho, phi, brain_edge) -> np.ndarray:
    """Soft mask of the sulci: thin clefts from the brain surface inwards, each at its angle and depth."""
    mask = np.zeros_like(rho)
    depth_in = brain_edge - rho  # distance inside the brain surface, in elliptical radius
    for angle, depth, width in params.sulci:
        across = np.abs(np.angle(np.exp(1j * (phi - angle)))) * np.maximum(rho, 0.3)
        cleft = _smooth_sigmoid(across - width, width / 3) * _smooth_sigmoid(depth_in - depth, 0.01)
        mask = np.maximum(mask, cleft * (depth_in > -0.01))
    return mask


def _texture(params: HeadCTHU, u, v) -> np.ndarray:
    """A smooth random field in HU, the same function of position at every resolution."""
    return sum(amp * np.cos(kx * u + ky * v + phase) for kx, ky, phase, amp in params.texture)


def _support(params: HeadCTHU, u, v, p, q, rho, edge: float) -> np.ndarray:
    """HU added by the head holder (a shell under the back of the head) and the table."""
    out = np.zeros_like(u)
    if params.holder is not None:
        gap, thickness = params.holder
        shell = _smooth_sigmoid(rho - (1.0 + gap + thickness), edge) * (1 - _smooth_sigmoid(rho - (1.0 + gap), edge))
        out += (HU["holder"] - HU["air"]) * shell * (q < -0.2 * params.head.semi_axes[1])
    if params.table is not None:
        top = params.table
        out += (HU["table"] - HU["air"]) * _smooth_sigmoid(v - top, edge) * _smooth_sigmoid(top - 0.03 - v, edge)
    return out


def render_head_ct_hu(params: HeadCTHU, size: int, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """The phantom on a ``size x size`` grid in [0, 1]: HU at ``supersample`` times the grid, windowed, averaged."""
    n = size * supersample
    u, v, p, q, rho, phi = _frame(params.head, n)
    edge = 1.5 / n
    hu, brain, brain_edge = _layers(params, rho, phi, edge)
    tissue = brain * (1 - _ventricles(params.head, p, q))
    hu += (HU["csf"] - hu) * (brain - tissue)
    hu += (HU["csf"] - hu) * _sulci(params, rho, phi, brain_edge) * brain
    hu += _texture(params, u, v) * tissue
    (a, b), mean_edge = params.head.semi_axes, brain_edge.mean()
    for lesion, level in zip(params.head.lesions, params.lesion_hu):
        r = lesion.radius * mean_edge
        cx, cy = r * a * math.cos(lesion.position_angle), r * b * math.sin(lesion.position_angle)
        d = _ellipse_distance(p, q, cx, cy, *lesion.semi_axes, lesion.angle)
        hu += (level - hu) * _smooth_sigmoid(d, lesion.edge) * tissue
    hu += _support(params, u, v, p, q, rho, edge)
    hu[np.hypot(u, v) > 1.0] = HU["air"]  # the scanner's field of view
    return window_to_unit(hu, params.window).reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def head_ct_hu_params(split: str, seed: int, index: int) -> HeadCTHU:
    return draw_head_ct_hu(split_rng(split, seed, index, FAMILY))


def head_ct_hu_phantoms(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` phantoms ``(n, 1, size, size)`` in [0, 1]; image ``i`` depends only on ``(split, seed, i)``."""
    check_request(n, size, split, seed)
    images = [render_head_ct_hu(head_ct_hu_params(split, seed, i), size) for i in range(n)]
    return torch.from_numpy(np.stack(images)[:, None].astype(np.float32))


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family, renderer

register_family(Family("head_ct_hu", head_ct_hu_phantoms, renderer(head_ct_hu_params, render_head_ct_hu),
                       prior="head_ct_hu", intensity="ct_window",
                       description="head-CT phantoms in HU through varied soft-tissue windows"))
