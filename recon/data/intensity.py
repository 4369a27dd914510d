"""Intensity rules: how an image in its source units becomes the priors' [0, 1] range, defined once.

* ``ct_window``: a display window ``(low, high)`` in Hounsfield units maps ``low`` to 0 and ``high`` to 1 and
  saturates outside, as a scanner display does; :data:`CT_WINDOW` is the book's head-CT soft-tissue window.
* ``mr_percentile``: each image (or volume) divided by its own :data:`MR_PERCENTILE` intensity, values above
  saturating (MR intensities have no absolute scale).
* ``unit``: images already in [0, 1] (procedural phantoms, 8- or 16-bit displays divided by their type's maximum).

:data:`RULES` names them; a data family (:class:`recon.data.families.Family`) states the rule its images follow, and
the folder reader (:mod:`recon.data.folder`) picks the rule of a folder's modality with :func:`rule_for_modality`.

>>> window_to_unit(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])).tolist()
[0.0, 0.0, 0.5, 1.0, 1.0]
>>> get_rule("ct_window").modality
'ct'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

CT_WINDOW = (-160.0, 240.0)  # head CT soft-tissue window in HU: centre 40, width 400
MR_PERCENTILE = 99.5


def window_to_unit(hu: np.ndarray, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    """HU through the display window ``(low, high)``: ``low`` -> 0, ``high`` -> 1, saturating outside."""
    low, high = window
    return np.clip((hu - low) / (high - low), 0.0, 1.0)


def percentile_top(values: np.ndarray, percentile: float = MR_PERCENTILE, floor: float = 1e-12) -> float:
    """The intensity that :func:`percentile_to_unit` maps to 1: the ``percentile`` of ``values``, at least ``floor``."""
    return max(float(np.percentile(values, percentile)), floor)


def percentile_to_unit(image: np.ndarray, percentile: float = MR_PERCENTILE, top: float | None = None) -> np.ndarray:
    """``image`` divided by its ``percentile`` intensity (or by ``top``, e.g. a whole volume's), clipped to [0, 1]."""
    top = percentile_top(image, percentile) if top is None else top
    return np.clip(image / top, 0.0, 1.0)


def _windowed(images, volumes, window, percentile) -> list[np.ndarray]:
    return [window_to_unit(image, window) for image in images]


def _per_volume(images, volumes, window, percentile) -> list[np.ndarray]:
    top = {volume: percentile_top(np.concatenate([image.ravel() for image, v in zip(images, volumes) if v == volume]),
                                  percentile) for volume in set(volumes)}
    return [percentile_to_unit(image, top=top[volume]) for image, volume in zip(images, volumes)]


def _as_given(images, volumes, window, percentile) -> list[np.ndarray]:
    return list(images)


@dataclasses.dataclass(frozen=True)
class IntensityRule:
    """A named rule: the folder reader's modality that follows it, its description for a data card,
    ``to_unit(images, volumes, window, percentile)``, the images (each with the volume it belongs to) in [0, 1], and
    ``settings(window, percentile)``, the settings it uses as a data card records them."""

    name: str
    modality: str
    description: str
    to_unit: Callable[..., list[np.ndarray]]
    settings: Callable[..., dict] = lambda window, percentile: {}

    def describe(self, window: tuple[float, float] = CT_WINDOW, percentile: float = MR_PERCENTILE) -> dict:
        """The rule as a data card states it: ``{"rule": description, **settings}``."""
        return {"rule": self.description, **self.settings(window, percentile)}


RULES: dict[str, IntensityRule] = {rule.name: rule for rule in (
    IntensityRule("ct_window", "ct", "CT window in HU, low -> 0, high -> 1, saturating", _windowed,
                  lambda window, percentile: {"window_hu": list(window)}),
    IntensityRule("mr_percentile", "mri", "each volume divided by its own percentile intensity, saturating",
                  _per_volume, lambda window, percentile: {"percentile": percentile}),
    IntensityRule("unit", "display", "integer images divided by their type's maximum; floating-point images as given",
                  _as_given),
)}


def get_rule(name: str) -> IntensityRule:
    if name not in RULES:
        raise ValueError(f"unknown intensity rule {name!r}; choose one of {sorted(RULES)}.")
    return RULES[name]


def rule_for_modality(modality: str) -> IntensityRule:
    """The rule of the folder reader's ``modality`` (``"ct"``, ``"mri"`` or ``"display"``)."""
    for rule in RULES.values():
        if rule.modality == modality:
            return rule
    raise ValueError(f"no intensity rule for modality {modality!r}; the modalities are "
                     f"{sorted(r.modality for r in RULES.values())}.")
