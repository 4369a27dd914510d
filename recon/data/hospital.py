"""A public / private pair of head-CT distributions for the post's second avenue (synthetic data under DP).

* **public**: lesion-free head phantoms of their own random family, standing for data anyone may use (an open atlas,
  volunteers);
* **private**: the book's head-CT phantoms (:func:`recon.data.head_ct_phantoms`, lesions included), standing for a
  hospital's patients, with a label per image: does it hold a haemorrhage-like (hyperdense) lesion?

The analogy's limits: both come from one procedural model, so the "hospital" differs from the public data only by
its lesions; every phantom is an independent draw, so no two images share a patient (real 2-D slices of one 3-D
volume would, and are the case most prone to memorisation).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from recon.data.phantoms import draw_head_ct, head_ct_params, render_head_ct
from recon.data.splits import check_request, split_rng

PUBLIC_FAMILY = 29  # entropy word of the public heads: no stream is shared with the private (FAMILY 17) phantoms
HYPERDENSE = 0.5  # lesion attenuation above this (tissue is about 0.45-0.52): haemorrhage-like
CLASSES = ("no haemorrhage", "haemorrhage")


def has_haemorrhage(head) -> bool:
    """Label 1 when the phantom holds at least one hyperdense lesion."""
    return any(lesion.level > HYPERDENSE for lesion in head.lesions)


def _stack(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)[:, None].astype(np.float32))


def public_heads(n: int, size: int = 64, split: str = "train", seed: int = 0) -> torch.Tensor:
    """``n`` lesion-free head phantoms ``(n, 1, size, size)`` from the public family (all of label 0)."""
    check_request(n, size, split, seed)
    heads = (draw_head_ct(split_rng(split, seed, i, PUBLIC_FAMILY)) for i in range(n))
    return _stack([render_head_ct(dataclasses.replace(h, lesions=()), size) for h in heads])


def private_heads(n: int, size: int = 64, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)``: the head-CT phantoms ``head_ct_phantoms(n, size, split, seed)`` returns, and their
    haemorrhage labels ``(n,)`` (int64, :data:`CLASSES`)."""
    check_request(n, size, split, seed)
    heads = [head_ct_params(split, seed, i) for i in range(n)]
    labels = torch.tensor([int(has_haemorrhage(h)) for h in heads], dtype=torch.int64)
    return _stack([render_head_ct(h, size) for h in heads]), labels


def public_labelled(n: int, size: int = 64, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(public_heads(...), zeros)``: the public images with their (known) label, no haemorrhage."""
    return public_heads(n, size, split, seed), torch.zeros(n, dtype=torch.int64)


# Registered last, once this module's names exist (recon.data.families imports this module to complete its registry).
from recon.data.families import Family, register_family

register_family(Family("head_ct_public", public_labelled, prior="head_ct_public", labels=(0,),
                       description="lesion-free public head phantoms, all of label 0 (no haemorrhage)"))
register_family(Family("head_ct_private", private_heads, prior="head_ct_private", labels=(0, 1),
                       description="the head_ct phantoms with haemorrhage labels: the hospital's private data"))
