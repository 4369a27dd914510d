"""Test images for measurements simulated off the reconstruction grid: each image rendered ``factor`` times finer
from its continuous description (the family's ``render`` in :mod:`recon.data.families`), and its truth on the
reconstruction grid as the area average of that rendering."""

from __future__ import annotations

import numpy as np
import torch

from recon.data.families import FAMILIES, get_family
from recon.data.splits import check_request


def fine_and_truth(dataset: str, n: int, size: int = 64, split: str = "test", seed: int = 0,
                   factor: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(truth, fine)``: images ``(n, 1, size, size)`` and their renderings ``(n, 1, f size, f size)``, the same
    images as ``dataset``'s loader returns for ``(split, seed)`` up to rasterisation (phantoms from their geometry,
    brain slices from the 1 mm template at the finer grid). Measure ``fine`` with ``operator.A_fine`` and score
    reconstructions against ``truth``: the data then do not come from the reconstruction's own pixels."""
    render = get_family(dataset).render
    if render is None:
        rendered = sorted(name for name, family in FAMILIES.items() if family.render is not None)
        raise ValueError(f"data family {dataset!r} has no finer rendering for off-grid measurement; choose one of "
                         f"{rendered}.")
    check_request(n, size, split, seed, splits=("train", "val", "test", "test_shift"))
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(f"factor must be an integer >= 2 (the refinement of the measurement grid); got {factor!r}.")
    fine = np.stack([render(split, seed, i, size, factor) for i in range(n)])[:, None]
    truth = fine.reshape(n, 1, size, factor, size, factor).mean(axis=(3, 5))
    return torch.from_numpy(truth.astype(np.float32)), torch.from_numpy(fine.astype(np.float32))
