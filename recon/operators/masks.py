"""Random parameter generators for Cartesian MRI: k-space line masks (fully sampled centre plus a pattern)."""

from __future__ import annotations

import math

import numpy as np
import torch

from recon._checks import check_positive_int


def _line_counts(n_lines: int, acceleration: float, center_fraction: float) -> tuple[int, int]:
    if not (isinstance(acceleration, (int, float)) and math.isfinite(acceleration) and acceleration >= 1):
        raise ValueError(f"acceleration must be a number >= 1 (1 = fully sampled); got {acceleration!r}.")
    if not (isinstance(center_fraction, (int, float)) and 0 <= center_fraction <= 1):
        raise ValueError(f"center_fraction must lie in [0, 1]; got {center_fraction!r}.")
    total = max(1, round(n_lines / acceleration))
    center = round(n_lines * center_fraction)
    if center > total:
        raise ValueError(
            f"center_fraction={center_fraction} asks for {center} central lines but acceleration={acceleration} "
            f"allows only {total} of {n_lines}; lower center_fraction or the acceleration."
        )
    return total, center


def _center_lines(n_lines: int, center: int) -> np.ndarray:
    start = n_lines // 2 - center // 2
    return np.arange(start, start + center)


def random_lines(n_lines: int, total: int, center: int, rng: np.random.Generator) -> np.ndarray:
    """Centre block plus lines drawn uniformly without replacement (fastMRI's random mask, exact count)."""
    chosen = set(_center_lines(n_lines, center).tolist())
    rest = np.array([i for i in range(n_lines) if i not in chosen])
    extra = rng.choice(rest, size=total - len(chosen), replace=False) if total > len(chosen) else []
    return np.concatenate([np.array(sorted(chosen), dtype=int), np.asarray(extra, dtype=int)])


def equispaced_lines(n_lines: int, total: int, center: int, rng: np.random.Generator) -> np.ndarray:
    """Centre block plus every k-th line from a random offset, spaced to reach ``total`` lines."""
    chosen = set(_center_lines(n_lines, center).tolist())
    need = total - len(chosen)
    if need <= 0:
        return np.array(sorted(chosen), dtype=int)
    spacing = max(1.0, (n_lines - len(chosen)) / need)
    offset = rng.uniform(0, spacing)
    grid = [int(i) for i in np.floor(offset + spacing * np.arange(n_lines)) if i < n_lines]
    picked = [i for i in dict.fromkeys(grid) if i not in chosen][:need]
    if len(picked) < need:  # the grid collided with the centre: fill the gaps from the unsampled lines in order
        left = [i for i in range(n_lines) if i not in chosen and i not in picked]
        picked += left[: need - len(picked)]
    return np.array(sorted(chosen) + picked, dtype=int)


def variable_density_lines(n_lines: int, total: int, center: int, rng: np.random.Generator, power: float = 2.0):
    """Centre block plus lines drawn without replacement with probability decaying as ``(1 - |k| / k_max)^power``."""
    chosen = set(_center_lines(n_lines, center).tolist())
    rest = np.array([i for i in range(n_lines) if i not in chosen])
    if total <= len(chosen):
        return np.array(sorted(chosen), dtype=int)
    distance = np.abs(rest - n_lines // 2) / (n_lines / 2)
    weight = (1.0 - distance) ** power + 1e-6
    extra = rng.choice(rest, size=total - len(chosen), replace=False, p=weight / weight.sum())
    return np.concatenate([np.array(sorted(chosen), dtype=int), extra])


MASK_PATTERNS = {"random": random_lines, "equispaced": equispaced_lines, "variable_density": variable_density_lines}


def cartesian_mask(n_lines: int, acceleration: float, center_fraction: float, pattern: str, seed: int) -> torch.Tensor:
    """Boolean mask over ``n_lines`` phase-encoding lines in centred k-space order (DC at ``n_lines // 2``).

    Exactly ``round(n_lines / acceleration)`` lines are kept, of which ``round(n_lines * center_fraction)`` form the
    fully sampled centre. The same seed gives the same mask.
    """
    check_positive_int(n_lines, "n_lines", 2)
    if pattern not in MASK_PATTERNS:
        raise ValueError(f"unknown mask pattern {pattern!r}; choose one of {sorted(MASK_PATTERNS)}.")
    total, center = _line_counts(n_lines, acceleration, center_fraction)
    lines = MASK_PATTERNS[pattern](n_lines, total, center, np.random.default_rng(seed))
    mask = torch.zeros(n_lines, dtype=torch.bool)
    mask[torch.as_tensor(lines, dtype=torch.long)] = True
    return mask
