"""Procedural head-CT phantoms: scalp, skull of varying thickness, grey/white matter, ventricles and lesions."""

from __future__ import annotations

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


def _angular_profile(phi: np.ndarray, rng: np.random.Generator, terms: int, scale: float) -> np.ndarray:
    """A smooth random periodic function of the polar angle (a few Fourier terms)."""
    out = np.zeros_like(phi)
    for k in range(1, terms + 1):
        out += rng.normal(0, scale / k) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
    return out


def head_ct_phantom(size: int, rng: np.random.Generator) -> np.ndarray:
    """One phantom of ``size x size`` pixels, rendered at 4x and area-averaged (anti-aliased), values in [0, 1]."""
    n = size * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / n * 2 - 1
    v, u = np.meshgrid(-coords, coords, indexing="ij")  # v up, u right
    angle = rng.uniform(-0.2, 0.2)
    cx, cy = rng.uniform(-0.02, 0.02, size=2)
    a, b = rng.uniform(0.70, 0.78), rng.uniform(0.80, 0.86)  # lateral and antero-posterior semi-axes
    c, s = math.cos(angle), math.sin(angle)
    p, q = c * (u - cx) + s * (v - cy), -s * (u - cx) + c * (v - cy)
    rho = np.sqrt((p / a) ** 2 + (q / b) ** 2)
    phi = np.arctan2(q / b, p / a)
    edge = 1.5 / n  # soft edge of about a third of an output pixel

    scalp_t = 0.035 + 0.01 * rng.uniform()
    skull_t = np.clip(0.07 + _angular_profile(phi, rng, 3, 0.015), 0.04, 0.11)
    skull_out = 1.0 - scalp_t
    brain_edge = skull_out - skull_t
    image = SCALP * _smooth_sigmoid(rho - 1.0, edge)
    image += (SKULL - SCALP) * _smooth_sigmoid(rho - skull_out, edge)

    # Brain: cortex band of grey matter with gyri, white matter inside.
    brain = _smooth_sigmoid(rho - brain_edge, edge)
    cortex_depth = 0.10 + 0.04 * np.sin(rng.integers(9, 16) * phi + rng.uniform(0, 2 * math.pi))
    white = _smooth_sigmoid(rho - (brain_edge - cortex_depth), 4 * edge)
    tissue = GREY + (WHITE - GREY) * white + rng.normal(0, 0.005)
    image = image * (1 - brain) + tissue * brain

    # Lateral ventricles (a mirrored pair) and a thin third ventricle.
    va, vb = rng.uniform(0.05, 0.09), rng.uniform(0.16, 0.26)
    vx, vy, vt = rng.uniform(0.08, 0.14), rng.uniform(-0.05, 0.08), rng.uniform(0.15, 0.45)
    ventricles = np.zeros_like(image)
    for side in (-1, 1):
        d = _ellipse_distance(p, q, side * vx, vy, va, vb, side * vt)
        ventricles = np.maximum(ventricles, _smooth_sigmoid(d, 0.05))
    d3 = _ellipse_distance(p, q, 0.0, vy - vb * 0.9, 0.015, 0.06, 0.0)
    ventricles = np.maximum(ventricles, _smooth_sigmoid(d3, 0.1))
    image += (CSF - image) * ventricles * brain

    # Lesions: hyperdense (haemorrhage-like) or hypodense (infarct-like) blobs of varied size and contrast, blended
    # towards their own attenuation so that overlapping lesions stay within the tissue range.
    parenchyma = brain * (1 - ventricles)
    for _ in range(min(rng.poisson(1.5), 4)):
        r = rng.uniform(0.0, 0.6) * brain_edge.mean()
        t = rng.uniform(0, 2 * math.pi)
        lx, ly = r * a * math.cos(t), r * b * math.sin(t)
        la, lb = rng.uniform(0.03, 0.14), rng.uniform(0.03, 0.14)
        level = rng.uniform(0.65, 0.85) if rng.uniform() < 0.5 else rng.uniform(0.25, 0.38)
        d = _ellipse_distance(p, q, lx, ly, la, lb, rng.uniform(0, math.pi))
        image += (level - image) * _smooth_sigmoid(d, rng.uniform(0.05, 0.3)) * parenchyma

    image[rho > 1.0 + 10 * edge] = 0.0  # exact air outside the head (the soft edge is below 1e-8 there)
    image = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return image


def head_ct_phantoms(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` head-CT phantoms ``(n, 1, size, size)`` in [0, 1], inside the CT field of view (the inscribed circle).

    Image ``i`` of a split depends only on ``(split, seed, i)``: the same call returns the same tensor, a longer call
    extends a shorter one, and train, val and test never share a random stream.
    """
    check_request(n, size, split, seed)
    images = [head_ct_phantom(size, split_rng(split, seed, i, FAMILY)) for i in range(n)]
    out = torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
    if out.min() < 0 or out.max() > 1:  # the design keeps every tissue in [0, 1]; a change that breaks it must fail
        raise AssertionError(f"phantom values left [0, 1]: [{float(out.min())}, {float(out.max())}]")
    return out
