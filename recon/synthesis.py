"""Synthetic images from a prior: the post's second avenue, data a hospital could release instead of its patients'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from recon._checks import check_positive_int
from recon.methods import sample_prior
from recon.models.denoiser import ClassConditioned, Denoiser


def sample(prior: Denoiser, n: int, *, seed: int = 0, label: int | None = None, guidance: float = 0.0,
           steps: int = 18, sampler: str = "heun", batch: int = 64, out: str | Path | None = None,
           progress: bool = True) -> torch.Tensor:
    """``n`` synthetic images ``(n, 1, H, W)`` in [0, 1] from ``prior`` (of class ``label`` for a class-conditional
    prior; None: its unconditional entry), sample ``i`` from seed ``seed + i`` whatever ``batch``; by default
    Heun's second-order sampler on ``steps`` Karras levels (EDM's sampler, ``2 steps - 1`` network evaluations).
    ``guidance`` (with a ``label``) is the classifier-free guidance weight ``w`` of :class:`ClassConditioned`, which
    doubles the network evaluations.

    With ``out``, writes ``out/images.npy`` (float32), ``out/labels.npy`` and one 8-bit PNG per image in ``out/png``.
    """
    check_positive_int(n, "n")
    check_positive_int(batch, "batch")
    if label is None and guidance:
        raise ValueError("guidance steers towards a label; pass label= with it (or guidance=0 for unlabelled samples).")
    model = prior if label is None else ClassConditioned(prior, label, guidance)
    chunks = []
    with torch.no_grad(), tqdm(total=n, desc="sample", disable=not progress, mininterval=5.0) as bar:
        for start in range(0, n, batch):
            size = min(batch, n - start)
            chunks.append(sample_prior(model, size, steps=steps, seed=seed + start, sampler=sampler).clamp(0, 1).cpu())
            bar.update(size)
    images = torch.cat(chunks)
    if out is not None:
        write_images(images, np.full(n, -1 if label is None else label), Path(out))
    return images


def write_images(images: torch.Tensor, labels: np.ndarray, out: Path) -> None:
    """``images.npy``, ``labels.npy`` and ``png/NNNNN.png`` (8-bit grey) under ``out``."""
    from PIL import Image

    (out / "png").mkdir(parents=True, exist_ok=True)
    array = images[:, 0].numpy().astype(np.float32)
    np.save(out / "images.npy", array)
    np.save(out / "labels.npy", np.asarray(labels, dtype=np.int64))
    for i, image in enumerate(array):
        Image.fromarray(np.round(255 * image.clip(0, 1)).astype(np.uint8)).save(out / "png" / f"{i:05d}.png")
