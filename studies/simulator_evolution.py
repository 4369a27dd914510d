"""A simulator as Private Evolution's source (Sim-PE: Lin, Baltrusaitis, Wang & Yekhanin, "Differentially private
synthetic data via APIs 3: using simulators instead of foundation models", 2025, arXiv:2502.05505).

The candidates are head phantoms whose parameters travel with them: a fresh candidate is a draw of the simulator, a
variation moves its parameters (never its pixels) by a step that shrinks round by round, and the class label is a
fixed input of the simulator, so that every candidate of class 1 holds a hyperdense lesion and no candidate of class 0
does. The private images still touch the output only through :func:`studies.private_evolution.noisy_votes`.

The simulator is the program that drew the hospital's phantoms (its anatomy sampler, renderer, lesion shapes and
labelling rule; the public heads share the anatomy), with the lesion ranges widened to a public guess
(:data:`PUBLIC_LESIONS`) that contains the hospital's own (:data:`HOSPITAL_LESIONS`, the ranges
:func:`recon.data.phantoms.draw_head_ct` uses): nothing is fitted to the hospital's images, but no real simulator is
this close to a hospital's anatomy and scanner, so it is a best case for public knowledge. The votes are what may move the
population from the public guess towards the hospital; a run with no votes (the population as first drawn) measures
what the simulator carries on its own, and the hospital's own generator gives the (oracle) ceiling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch

from recon.data.hospital import HYPERDENSE, has_haemorrhage
from recon.data.phantoms import HeadCT, Lesion, draw_head_ct, render_head_ct
from studies.private_evolution import CLASS_SEED, Evolution, private_evolution

WORD = 47  # entropy word of the simulator's streams: shared with no data family
MAX_LESIONS = 4  # as the phantoms
TRIES = 100  # draws or moves tried before a class-keeping candidate is given up (an error, see draw_candidate)


@dataclasses.dataclass(frozen=True)
class LesionModel:
    """How many lesions a head holds (a Poisson mean, capped at :data:`MAX_LESIONS`), how likely each is hyperdense,
    and the ranges of their size (semi-axes, fraction of the image half-width), attenuation by type and edge width."""

    count: float
    p_hyperdense: float
    size: tuple[float, float]
    hyperdense: tuple[float, float]
    hypodense: tuple[float, float]
    edge: tuple[float, float]
    radius: tuple[float, float] = (0.0, 0.6)


# The ranges of recon.data.phantoms._draw_lesion: what the hospital's images were drawn from.
HOSPITAL_LESIONS = LesionModel(count=1.5, p_hyperdense=0.5, size=(0.03, 0.14), hyperdense=(0.65, 0.85),
                               hypodense=(0.25, 0.38), edge=(0.05, 0.3))
# A public guess: bleeds are brighter than tissue (0.45-0.52) and infarcts darker, of any size from a few pixels to a
# quarter of the brain, sharp or diffuse; nothing here was fitted to the hospital's images.
PUBLIC_LESIONS = LesionModel(count=2.0, p_hyperdense=0.5, size=(0.02, 0.25), hyperdense=(0.55, 1.0),
                             hypodense=(0.1, 0.42), edge=(0.02, 0.5))

# The anatomy's ranges (recon.data.phantoms.draw_head_ct; the normal terms at two standard deviations): the public
# phantoms share this anatomy, so the simulator may know it.
_ANATOMY = {"angle": (-0.2, 0.2), "centre": (-0.02, 0.02), "semi_axes": ((0.70, 0.78), (0.80, 0.86)),
            "scalp": (0.035, 0.045), "tissue_offset": (-0.01, 0.01), "gyri": (9, 15),
            "ventricles": ((0.05, 0.09), (0.16, 0.26), (0.08, 0.14), (-0.05, 0.08), (0.15, 0.45))}


def _lesion(rng: np.random.Generator, model: LesionModel, hyperdense: bool) -> Lesion:
    lo, hi = model.hyperdense if hyperdense else model.hypodense
    return Lesion(rng.uniform(*model.radius), rng.uniform(0, 2 * math.pi), tuple(rng.uniform(*model.size, size=2)),
                  rng.uniform(lo, hi), rng.uniform(0, math.pi), rng.uniform(*model.edge))


def draw_lesions(rng: np.random.Generator, model: LesionModel) -> tuple[Lesion, ...]:
    """A head's lesions under ``model``."""
    return tuple(_lesion(rng, model, rng.uniform() < model.p_hyperdense)
                 for _ in range(min(rng.poisson(model.count), MAX_LESIONS)))


def draw_candidate(rng: np.random.Generator, label: int, model: LesionModel | None) -> HeadCT:
    """A head of class ``label`` (1: at least one hyperdense lesion; 0: none): the public anatomy with lesions from
    ``model``, or with ``model=None`` a draw of the hospital's own generator (the oracle), redrawn until its class is
    ``label``."""
    for _ in range(TRIES):
        head = draw_head_ct(rng)
        if model is not None:
            head = dataclasses.replace(head, lesions=draw_lesions(rng, model))
        if has_haemorrhage(head) == bool(label):
            return head
    raise RuntimeError(f"no head of class {label} in {TRIES} draws; the lesion model cannot make that class "
                       f"(raise its count or p_hyperdense).")


def _jitter(value: float, bounds: tuple[float, float], step: float, rng: np.random.Generator) -> float:
    """``value`` moved by a normal step of a quarter of the range times ``step``, clipped to the range."""
    lo, hi = bounds
    return float(np.clip(value + rng.normal(0.0, 0.25 * step * (hi - lo)), lo, hi))


def _turn(angle: float, period: float, step: float, rng: np.random.Generator) -> float:
    return float((angle + rng.normal(0.0, 0.25 * step * period)) % period)


def _move_lesion(lesion: Lesion, model: LesionModel, step: float, rng: np.random.Generator) -> Lesion:
    """Position, size, attenuation (within its own type), orientation and edge moved; the type never changes."""
    levels = model.hyperdense if lesion.level > HYPERDENSE else model.hypodense
    return Lesion(_jitter(lesion.radius, model.radius, step, rng), _turn(lesion.position_angle, 2 * math.pi, step, rng),
                  tuple(_jitter(a, model.size, step, rng) for a in lesion.semi_axes),
                  _jitter(lesion.level, levels, step, rng), _turn(lesion.angle, math.pi, step, rng),
                  _jitter(lesion.edge, model.edge, step, rng))


def _move_anatomy(head: HeadCT, step: float, rng: np.random.Generator) -> HeadCT:
    gyri = head.gyri + (int(rng.choice((-1, 1))) if rng.uniform() < step / 2 else 0)
    return dataclasses.replace(
        head, angle=_jitter(head.angle, _ANATOMY["angle"], step, rng),
        centre=tuple(_jitter(c, _ANATOMY["centre"], step, rng) for c in head.centre),
        semi_axes=tuple(_jitter(a, r, step, rng) for a, r in zip(head.semi_axes, _ANATOMY["semi_axes"])),
        scalp=_jitter(head.scalp, _ANATOMY["scalp"], step, rng),
        skull_terms=tuple((_jitter(amp, (-0.03 / k, 0.03 / k), step, rng), _turn(phase, 2 * math.pi, step, rng))
                          for k, (amp, phase) in enumerate(head.skull_terms, 1)),
        gyri=int(np.clip(gyri, *_ANATOMY["gyri"])), gyri_phase=_turn(head.gyri_phase, 2 * math.pi, step, rng),
        tissue_offset=_jitter(head.tissue_offset, _ANATOMY["tissue_offset"], step, rng),
        ventricles=tuple(_jitter(v, r, step, rng) for v, r in zip(head.ventricles, _ANATOMY["ventricles"])))


def vary_head(head: HeadCT, label: int, model: LesionModel, step: float, rng: np.random.Generator) -> HeadCT:
    """A variation of ``head`` that keeps its class: anatomy and lesions moved by ``step`` (1 at the first round,
    shrinking after), and with probability ``0.3 step`` a lesion born (drawn from ``model``) or one removed. A move
    that would change the class is drawn again; after :data:`TRIES` the head is returned unmoved."""
    if not 0 < step <= 1:
        raise ValueError(f"a variation step must lie in (0, 1]; got {step}.")
    for _ in range(TRIES):
        lesions = [_move_lesion(lesion, model, step, rng) for lesion in head.lesions]
        if rng.uniform() < 0.3 * step:
            if lesions and (len(lesions) == MAX_LESIONS or rng.uniform() < 0.5):
                lesions.pop(int(rng.integers(len(lesions))))
            else:
                lesions.append(_lesion(rng, model, rng.uniform() < model.p_hyperdense))
        moved = dataclasses.replace(_move_anatomy(head, step, rng), lesions=tuple(lesions))
        if has_haemorrhage(moved) == bool(label):
            return moved
    return head


def _render(heads: Sequence[HeadCT], size: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([render_head_ct(h, size) for h in heads])[:, None].astype(np.float32))


class SimulatorSource:
    """Private Evolution's source over the head simulator for one class: ``initial`` draws candidates of class
    ``label`` (lesions from ``model``; ``None``: the hospital's generator, an oracle), ``vary`` moves their
    parameters with a step of ``level / first_level`` (so the prior's variation levels carry over as a schedule).
    Every candidate's randomness comes from its own seed on the stream :data:`WORD`."""

    def __init__(self, label: int, model: LesionModel | None = PUBLIC_LESIONS, *, size: int = 64,
                 first_level: float = 0.5):
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1; got {label!r}.")
        self.label, self.model, self.size, self.first_level = label, model, size, first_level

    def _rng(self, seed: int) -> np.random.Generator:
        return np.random.default_rng([WORD, self.label, seed])

    def initial(self, n: int, seed: int) -> tuple[torch.Tensor, list[HeadCT]]:
        heads = [draw_candidate(self._rng(seed + i), self.label, self.model) for i in range(n)]
        return _render(heads, self.size), heads

    def vary(self, state: Sequence[HeadCT], level: float, seeds: Sequence[int]) -> tuple[torch.Tensor, list[HeadCT]]:
        model = self.model or HOSPITAL_LESIONS
        step = min(level / self.first_level, 1.0)
        heads = [vary_head(h, self.label, model, step, self._rng(s)) for h, s in zip(state, seeds, strict=True)]
        return _render(heads, self.size), heads


def lesion_statistics(heads: Sequence[HeadCT]) -> dict:
    """What a population's lesions look like: lesions per head, and the mean size (geometric mean of the semi-axes),
    attenuation and edge of its hyperdense and of its hypodense lesions (``None`` where there are none)."""
    out = {"heads": len(heads), "lesions_per_head": float(np.mean([len(h.lesions) for h in heads]))}
    for name, keep in (("hyperdense", lambda l: l.level > HYPERDENSE), ("hypodense", lambda l: l.level <= HYPERDENSE)):
        lesions = [l for h in heads for l in h.lesions if keep(l)]
        out[name] = ({"count": len(lesions), "size": float(np.mean([math.sqrt(a * b) for a, b in
                                                                     (l.semi_axes for l in lesions)])),
                      "level": float(np.mean([l.level for l in lesions])),
                      "edge": float(np.mean([l.edge for l in lesions]))} if lesions else None)
    return out


def simulated_set(per_class: int, seed: int, model: LesionModel | None = PUBLIC_LESIONS):
    """``per_class`` simulator images of each class with no votes (``model=None``: the hospital's generator):
    ``(images, class-1 heads)``, class 0 first. These are the first population of :func:`evolve` with the same seed."""
    drawn = [SimulatorSource(c, model).initial(per_class, seed + c * CLASS_SEED) for c in (0, 1)]
    return torch.cat([images for images, _ in drawn]), drawn[1][1]


def evolve(images: torch.Tensor, labels: torch.Tensor, settings: Evolution, *, seed: int,
           model: LesionModel = PUBLIC_LESIONS) -> tuple[torch.Tensor, list[dict], dict[str, list[int]]]:
    """Private Evolution over the simulator, each class on its own private images (class 0 first):
    ``(synthetic, rounds, kept)``, with the lesion statistics of the class-1 population at every vote and, per class,
    how many candidates kept a count after the cut at every vote."""
    rounds, kept = [], {"class0": [], "class1": []}

    def record(label, state):
        kept[f"class{label}"].append(int((state["counts"] > 0).sum()))
        if label:
            rounds.append(lesion_statistics(state["state"]))

    parts = [private_evolution(SimulatorSource(c, model, first_level=settings.levels[0]), images[labels == c],
                               settings, seed=seed + c * CLASS_SEED, callback=lambda r, c=c: record(c, r))
             for c in (0, 1)]
    return torch.cat(parts), rounds, kept
