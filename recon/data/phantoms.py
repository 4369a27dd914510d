"""Procedural head-CT phantoms: scalp, skull of varying thickness, grey/white matter, ventricles and lesions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from recon.data.splits import check_request, split_rng

FAMILY = 17  # entropy word of this data family
SUPERSAMPLE = 4

# Attenuation in a brain window, mapped to [0, 1].
AIR, SCALP, SKULL, GREY, WHITE, CSF = 0.0, 0.35, 1.0, 0.52, 0.45, 0.18


def _smooth_sigmoid(d: np.ndarray, width: float) -> np.ndarray:
    """Soft indicator of ``d < 0`` with an edge of about ``width`` (normalised units)."""
    return 0.5 * (1.0 - np.tanh(d / width))


def _ellipse_distance(u, v, cx, cy, a, b, angle):
    """Normalised elliptical radius minus one: negative inside the ellipse."""
    c, s = math.cos(angle), math.sin(angle)
    du, dv = u - cx, v - cy
    p, q = c * du + s * dv, -s * du + c * dv
    return np.sqrt((p / a) ** 2 + (q / b) ** 2) - 1.0


@dataclasses.dataclass(frozen=True)
class Lesion:
    """An elliptical hyperdense (haemorrhage-like) or hypodense (infarct-like) blob: centre as a fraction of the
    brain radius and an angle, semi-axes, attenuation, orientation and edge width."""

    radius: float
    position_angle: float
    semi_axes: tuple[float, float]
    level: float
    angle: float
    edge: float


@dataclasses.dataclass(frozen=True)
class HeadCT:
    """The continuous description of one phantom, in normalised coordinates ([-1, 1] across the image): head pose
    and size, scalp and skull thickness (the skull's as Fourier terms of the polar angle), the cortex's gyri, tissue
    level, ventricles and lesions. :func:`render_head_ct` draws it at any resolution."""

    angle: float
    centre: tuple[float, float]
    semi_axes: tuple[float, float]
    scalp: float
    skull_terms: tuple[tuple[float, float], ...]
    gyri: int
    gyri_phase: float
    tissue_offset: float
    ventricles: tuple[float, ...]
    lesions: tuple[Lesion, ...]


def draw_head_ct(rng: np.random.Generator) -> HeadCT:
    """Draw a phantom's parameters from ``rng`` (the order of draws is part of the data's definition)."""
    angle = rng.uniform(-0.2, 0.2)
    centre = tuple(rng.uniform(-0.02, 0.02, size=2))
    semi_axes = (rng.uniform(0.70, 0.78), rng.uniform(0.80, 0.86))  # lateral and antero-posterior
    scalp = 0.035 + 0.01 * rng.uniform()
    skull_terms = tuple((rng.normal(0, 0.015 / k), rng.uniform(0, 2 * math.pi)) for k in range(1, 4))
    gyri, gyri_phase = int(rng.integers(9, 16)), rng.uniform(0, 2 * math.pi)
    tissue_offset = rng.normal(0, 0.005)
    ventricles = (rng.uniform(0.05, 0.09), rng.uniform(0.16, 0.26), rng.uniform(0.08, 0.14), rng.uniform(-0.05, 0.08),
                  rng.uniform(0.15, 0.45))
    lesions = tuple(_draw_lesion(rng) for _ in range(min(rng.poisson(1.5), 4)))
    return HeadCT(angle, centre, semi_axes, scalp, skull_terms, gyri, gyri_phase, tissue_offset, ventricles, lesions)


def _draw_lesion(rng: np.random.Generator) -> Lesion:
    radius, position_angle = rng.uniform(0.0, 0.6), rng.uniform(0, 2 * math.pi)
    semi_axes = (rng.uniform(0.03, 0.14), rng.uniform(0.03, 0.14))
    level = rng.uniform(0.65, 0.85) if rng.uniform() < 0.5 else rng.uniform(0.25, 0.38)
    return Lesion(radius, position_angle, semi_axes, level, rng.uniform(0, math.pi), rng.uniform(0.05, 0.3))


def _head_frame(head: HeadCT, n: int):
    """Head-aligned coordinates ``p, q`` on an ``n x n`` grid of pixel centres, the elliptical radius and angle."""
    coords = (np.arange(n) + 0.5) / n * 2 - 1
    v, u = np.meshgrid(-coords, coords, indexing="ij")  # v up, u right
    (cx, cy), (a, b) = head.centre, head.semi_axes
    c, s = math.cos(head.angle), math.sin(head.angle)
    p, q = c * (u - cx) + s * (v - cy), -s * (u - cx) + c * (v - cy)
    return p, q, np.sqrt((p / a) ** 2 + (q / b) ** 2), np.arctan2(q / b, p / a)


def _skull_and_brain(head: HeadCT, rho, phi, edge: float):
    """Scalp and skull layers, and the brain mask with its cortex band (grey matter with gyri) over white matter."""
    skull_t = 0.07 + sum(amp * np.cos(k * phi + phase) for k, (amp, phase) in enumerate(head.skull_terms, 1))
    skull_out = 1.0 - head.scalp
    brain_edge = skull_out - np.clip(skull_t, 0.04, 0.11)
    image = SCALP * _smooth_sigmoid(rho - 1.0, edge) + (SKULL - SCALP) * _smooth_sigmoid(rho - skull_out, edge)
    brain = _smooth_sigmoid(rho - brain_edge, edge)
    cortex_depth = 0.10 + 0.04 * np.sin(head.gyri * phi + head.gyri_phase)
    white = _smooth_sigmoid(rho - (brain_edge - cortex_depth), 4 * edge)
    tissue = GREY + (WHITE - GREY) * white + head.tissue_offset
    return image * (1 - brain) + tissue * brain, brain, brain_edge


def _ventricles(head: HeadCT, p, q):
    """Lateral ventricles (a mirrored pair) and a thin third ventricle, as a soft mask."""
    va, vb, vx, vy, vt = head.ventricles
    mask = np.zeros_like(p)
    for side in (-1, 1):
        mask = np.maximum(mask, _smooth_sigmoid(_ellipse_distance(p, q, side * vx, vy, va, vb, side * vt), 0.05))
    return np.maximum(mask, _smooth_sigmoid(_ellipse_distance(p, q, 0.0, vy - vb * 0.9, 0.015, 0.06, 0.0), 0.1))


def render_head_ct(head: HeadCT, size: int, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """The phantom on a ``size x size`` grid, rendered at ``supersample`` times that and area-averaged (anti-aliased),
    values in [0, 1], exactly 0 outside the head."""
    n = size * supersample
    p, q, rho, phi = _head_frame(head, n)
    edge = 1.5 / n  # soft edge of about a third of an output pixel at the default supersampling
    image, brain, brain_edge = _skull_and_brain(head, rho, phi, edge)
    ventricles = _ventricles(head, p, q)
    image += (CSF - image) * ventricles * brain
    # Lesions blend towards their own attenuation, so that overlapping lesions stay within the tissue range.
    parenchyma = brain * (1 - ventricles)
    (a, b), mean_edge = head.semi_axes, brain_edge.mean()
    for lesion in head.lesions:
        r = lesion.radius * mean_edge
        cx, cy = r * a * math.cos(lesion.position_angle), r * b * math.sin(lesion.position_angle)
        d = _ellipse_distance(p, q, cx, cy, *lesion.semi_axes, lesion.angle)
        image += (lesion.level - image) * _smooth_sigmoid(d, lesion.edge) * parenchyma
    image[rho > 1.0 + 10 * edge] = 0.0  # exact air outside the head (the soft edge is below 1e-8 there)
    return image.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def head_ct_phantom(size: int, rng: np.random.Generator) -> np.ndarray:
    """One phantom of ``size x size`` pixels drawn from ``rng``, values in [0, 1]."""
    return render_head_ct(draw_head_ct(rng), size)


def head_ct_params(split: str, seed: int, index: int) -> HeadCT:
    """The description of phantom ``index`` of a split."""
    return draw_head_ct(split_rng(split, seed, index, FAMILY))


def head_ct_phantoms(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` head-CT phantoms ``(n, 1, size, size)`` in [0, 1], inside the CT field of view (the inscribed circle).

    Image ``i`` of a split depends only on ``(split, seed, i)``: the same call returns the same tensor, a longer call
    extends a shorter one, and train, val and test never share a random stream.
    """
    check_request(n, size, split, seed)
    images = [render_head_ct(head_ct_params(split, seed, i), size) for i in range(n)]
    out = torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
    if out.min() < 0 or out.max() > 1:  # the design keeps every tissue in [0, 1]; a change that breaks it must fail
        raise AssertionError(f"phantom values left [0, 1]: [{float(out.min())}, {float(out.max())}]")
    return out


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family, renderer

register_family(Family("head_ct", head_ct_phantoms, renderer(head_ct_params, render_head_ct), prior="head_ct",
                       description="procedural head-CT phantoms with lesions, contrasts chosen for visibility"))
