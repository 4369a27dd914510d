"""The registry of data families: each family's loader, its finer rendering for off-grid measurement, the shipped
prior trained on it and its intensity rule, registered once by name.

Training (``python -m recon.train --data NAME``), :func:`recon.data.fine_and_truth` and the shipped priors' folder
names (:func:`recon.models.checkpoints.shipped_folder`) all read this registry. A family registers itself at the
end of its own module, so adding one is a new module (its images, its :func:`register_family` call) plus its test,
and one line in the import list at the end of this file, which makes the registry complete on import.

>>> get_family("head_ct").intensity, get_family("head_ct_private").labels
('unit', (0, 1))
>>> image = get_family("brain").images(1, 32, "test", 0)
>>> tuple(image.shape)
(1, 1, 32, 32)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from recon.data.intensity import RULES


@dataclasses.dataclass(frozen=True)
class Family:
    """A data family.

    ``images(n, size, split, seed)``: ``(n, 1, size, size)`` in [0, 1] (a labelled family returns ``(images,
    labels)``); ``render(split, seed, index, size, factor)``: image ``index`` rendered on a grid ``factor`` times
    finer, a numpy ``(size * factor, size * factor)`` array (None: no off-grid rendering); ``prior``: the shipped
    prior trained on it, by name (None: none shipped); ``intensity``: its rule in :data:`recon.data.intensity.RULES`;
    ``labels``: the classes a labelled family's loader returns (None: unlabelled).
    """

    name: str
    images: Callable
    render: Callable | None = None
    prior: str | None = None
    intensity: str = "unit"
    labels: tuple[int, ...] | None = None
    description: str = ""

    def __post_init__(self):
        if self.intensity not in RULES:
            raise ValueError(f"family {self.name!r}: unknown intensity rule {self.intensity!r}; choose one of "
                             f"{sorted(RULES)}.")


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` to :data:`FAMILIES`; a name registered already is refused."""
    if family.name in FAMILIES:
        raise ValueError(f"a data family named {family.name!r} is registered already "
                         f"({FAMILIES[family.name].description or 'no description'}); choose another name.")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown data family {name!r}; the registered families are {sorted(FAMILIES)} "
                         "(`python -m recon.train --data` also takes the path of a folder of images).")
    return FAMILIES[name]


def renderer(params: Callable, render: Callable, drawn_at_size: bool = False) -> Callable:
    """``render(split, seed, index, size, factor)`` of a family whose image ``index`` is ``params(split, seed,
    index)`` (or ``params(split, seed, index, size)`` where its draw depends on the grid it is drawn for) and is
    rendered on any grid by ``render(params, n)``."""

    def fine(split: str, seed: int, index: int, size: int, factor: int) -> np.ndarray:
        drawn = params(split, seed, index, size) if drawn_at_size else params(split, seed, index)
        return render(drawn, size * factor)

    return fine


# The family modules register themselves on import (each imports this module at its end, after its own names).
from recon.data import brain, brain_real, brain_synth, head_ct_hu, head_ct_mixed, hospital, phantoms  # noqa: F401
