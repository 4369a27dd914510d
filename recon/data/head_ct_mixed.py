"""Head CT from both phantom families: the Hounsfield-unit phantoms of :mod:`recon.data.head_ct_hu` (real contrasts,
sulci, texture, head holders) and the first family of :mod:`recon.data.phantoms` (the contrasts the book's phantom test
sets use), each image drawn from one of them with probability ``SHARE_HU`` / ``1 - SHARE_HU``.

Image ``i`` of a split is image ``i`` of the chosen family's same split and seed, so the splits stay as disjoint as
the families' own. A prior fine-tuned on this mix keeps what it learnt of real contrasts without losing the phantom
test sets that every other chapter reports on (the real-scan study measures both).
"""

from __future__ import annotations

import numpy as np
import torch

from recon.data.head_ct_hu import HeadCTHU, head_ct_hu_params, render_head_ct_hu
from recon.data.phantoms import head_ct_params, render_head_ct
from recon.data.splits import check_request, split_rng

FAMILY = 43
SHARE_HU = 0.5


def head_ct_mixed_params(split: str, seed: int, index: int):
    """The description of image ``index``: the first family's or the HU family's, by a draw of this family's stream."""
    if split_rng(split, seed, index, FAMILY).uniform() < SHARE_HU:
        return head_ct_hu_params(split, seed, index)
    return head_ct_params(split, seed, index)


def render_head_ct_mixed(params, size: int) -> np.ndarray:
    return render_head_ct_hu(params, size) if isinstance(params, HeadCTHU) else render_head_ct(params, size)


def head_ct_mixed_phantoms(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` phantoms ``(n, 1, size, size)`` in [0, 1] from the two families; image ``i`` depends only on
    ``(split, seed, i)``."""
    check_request(n, size, split, seed)
    images = [render_head_ct_mixed(head_ct_mixed_params(split, seed, i), size) for i in range(n)]
    return torch.from_numpy(np.stack(images)[:, None].astype(np.float32))


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family, renderer

register_family(Family("head_ct_mixed", head_ct_mixed_phantoms, renderer(head_ct_mixed_params, render_head_ct_mixed),
                       intensity="ct_window", description="head_ct_hu and head_ct phantoms, half each"))
