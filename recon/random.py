"""Injected randomness: one ``torch.Generator`` for a batch, or one per sample so that a batch reproduces each image."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One generator per sample: sample ``i`` then depends only on ``seeds[i]``, whatever the batch."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def seeds_for(seed, batch: int) -> list[int]:
    """Per-sample seeds: ``seed + i`` for an int, else one given seed per sample (checked against ``batch``)."""
    seeds = list(range(seed, seed + batch)) if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != batch:
        raise ValueError(f"seed must be an int or one seed per image; got {len(seeds)} seeds for {batch} images.")
    return seeds


def randn(shape, generator: Generators, dtype=torch.float32, device=None) -> torch.Tensor:
    """Standard normal noise of ``shape`` (batch first), from one generator or a list of per-sample generators."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} per-sample generators for a batch of {shape[0]}.")
        return torch.stack([torch.randn(shape[1:], generator=g, dtype=dtype) for g in generator]).to(device)
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)
