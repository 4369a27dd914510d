"""Train / validation / test splits that never share a random stream, and the checks every data loader applies."""

from __future__ import annotations

import numpy as np

from recon._checks import check_positive_int

# Each split owns its own entropy word, so the seed streams of two splits are disjoint by construction. "test_shift"
# (test images from anatomy the training split never shows) exists only where a data family defines one.
SPLITS = {"train": 0, "val": 1, "test": 2, "test_shift": 3}


def split_rng(split: str, seed: int, index: int, family: int) -> np.random.Generator:
    """The random stream of image ``index`` of ``split`` under ``seed`` for data ``family``."""
    return np.random.default_rng([family, SPLITS[split], seed, index])


def check_request(n: int, size: int, split: str, seed: int, min_size: int = 16,
                  splits=("train", "val", "test")) -> None:
    """Validate the common arguments of the data loaders; ``splits`` are those the data family has."""
    check_positive_int(n, "n")
    check_positive_int(size, "size", min_size)
    if split not in splits:
        raise ValueError(f"unknown split {split!r} for these images; choose one of {list(splits)}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}.")
