"""Test images for measurements simulated off the reconstruction grid: each image rendered ``factor`` times finer
from its continuous description, and its truth on the reconstruction grid as the area average of that rendering."""

from __future__ import annotations

import numpy as np
import torch

from recon.data.brain import brain_slice_params, render_brain_slice
from recon.data.brain_real import brain_real_params, render_brain_real
from recon.data.head_ct_hu import head_ct_hu_params, render_head_ct_hu
from recon.data.head_ct_mixed import head_ct_mixed_params, render_head_ct_mixed
from recon.data.phantoms import head_ct_params, render_head_ct
from recon.data.splits import check_request

RENDERERS = {
    "head_ct_hu": lambda split, seed, i, size, factor: render_head_ct_hu(head_ct_hu_params(split, seed, i),
                                                                         size * factor),
    "head_ct_mixed": lambda split, seed, i, size, factor: render_head_ct_mixed(head_ct_mixed_params(split, seed, i),
                                                                               size * factor),
    "head_ct": lambda split, seed, i, size, factor: render_head_ct(head_ct_params(split, seed, i), size * factor),
    "brain": lambda split, seed, i, size, factor: render_brain_slice(brain_slice_params(split, seed, i, size),
                                                                     size * factor),
    "brain_real": lambda split, seed, i, size, factor: render_brain_real(brain_real_params(split, seed, i, size),
                                                                         size * factor),
}


def fine_and_truth(dataset: str, n: int, size: int = 64, split: str = "test", seed: int = 0,
                   factor: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(truth, fine)``: images ``(n, 1, size, size)`` and their renderings ``(n, 1, f size, f size)``, the same
    images as ``dataset``'s loader returns for ``(split, seed)`` up to rasterisation (phantoms from their geometry,
    brain slices from the 1 mm template at the finer grid). Measure ``fine`` with ``operator.A_fine`` and score
    reconstructions against ``truth``: the data then do not come from the reconstruction's own pixels."""
    if dataset not in RENDERERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(RENDERERS)}.")
    check_request(n, size, split, seed, splits=("train", "val", "test", "test_shift"))
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(f"factor must be an integer >= 2 (the refinement of the measurement grid); got {factor!r}.")
    fine = np.stack([RENDERERS[dataset](split, seed, i, size, factor) for i in range(n)])[:, None]
    truth = fine.reshape(n, 1, size, factor, size, factor).mean(axis=(3, 5))
    return torch.from_numpy(truth.astype(np.float32)), torch.from_numpy(fine.astype(np.float32))
