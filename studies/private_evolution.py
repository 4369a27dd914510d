"""Private Evolution (Lin et al., ICLR 2024): differentially private synthetic images from a public prior, without
training on the private images.

The private images touch the output only through votes. Each round, every private image votes for its nearest
synthetic candidate (in a data-independent feature space); Gaussian noise is added to the vote counts, small counts
are cut to zero, and the next population is drawn from the candidates in proportion to the noisy counts, then varied
by the source: the public prior (re-noised to a level and denoised back, SDEdit-style), or a simulator whose
parameters are moved (:mod:`studies.simulator_evolution`). Adding or removing one private image
changes one count by one, so each round is a Gaussian mechanism of L2 sensitivity 1; ``rounds`` of them at noise
``sigma`` compose to ``mu``-Gaussian differential privacy with ``mu = sqrt(rounds) / sigma`` (Dong, Roth & Su 2022),
which :func:`epsilon_of` converts to (epsilon, delta). Classes are handled one at a time on their own private images
(disjoint sets: the guarantee is the largest of them, not their sum).

Our own code over ``recon``'s denoiser; the paper's variation API is a foundation model, ours the book's public prior
or the head simulator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import brentq
from scipy.stats import norm

from recon.methods import sample_prior
from recon.models.denoiser import Denoiser
from recon.random import generators, randn
from recon.sampling.loops import sample_heun
from recon.sampling.schedules import SIGMA_MIN, get_sigmas_karras

CLASS_SEED = 10**6  # a study that evolves class c draws from seed + c * CLASS_SEED on, clear of the other class


def delta_of(epsilon: float, mu: float) -> float:
    """The delta at which mu-GDP holds with ``epsilon`` (Dong, Roth & Su 2022, Corollary 2.13)."""
    return float(norm.cdf(-epsilon / mu + mu / 2) - math.exp(epsilon + norm.logcdf(-epsilon / mu - mu / 2)))


def epsilon_of(sigma: float, rounds: int, delta: float) -> float:
    """The epsilon of ``rounds`` Gaussian mechanisms of sensitivity 1 and noise ``sigma``, at ``delta``."""
    if sigma <= 0 or rounds < 1 or not 0 < delta < 1:
        raise ValueError(f"need sigma > 0, rounds >= 1 and 0 < delta < 1; got {sigma}, {rounds}, {delta}.")
    mu = math.sqrt(rounds) / sigma
    if delta_of(0.0, mu) <= delta:
        return 0.0
    return float(brentq(lambda e: delta_of(e, mu) - delta, 0.0, 10 * mu * mu + 50))


def sigma_for(epsilon: float, rounds: int, delta: float) -> float:
    """The vote noise that gives (``epsilon``, ``delta``) over ``rounds`` rounds."""
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive; got {epsilon}.")
    return float(brentq(lambda s: epsilon_of(s, rounds, delta) - epsilon, 1e-3, 1e4))


def pooled_features(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """A data-independent embedding: the images average-pooled to ``size`` x ``size`` and flattened (no network
    trained on private data may embed them, or the embedding itself would leak)."""
    return F.adaptive_avg_pool2d(images.float(), size).flatten(1)


def noisy_votes(private: torch.Tensor, candidates: torch.Tensor, *, sigma: float, threshold: float,
                generator: torch.Generator) -> torch.Tensor:
    """Each private feature row votes for its nearest candidate row; the counts plus N(0, sigma^2), and every count
    under ``threshold`` set to zero (the paper's cut of bins that noise alone could fill)."""
    nearest = torch.cdist(private, candidates).argmin(1)
    counts = torch.bincount(nearest, minlength=len(candidates)).double()
    counts = counts + sigma * torch.randn(len(candidates), generator=generator, dtype=torch.float64)
    return torch.where(counts >= threshold, counts, torch.zeros_like(counts))


def vary(prior: Denoiser, images: torch.Tensor, level: float, *, steps: int, seeds: Sequence[int]) -> torch.Tensor:
    """Variations of ``images`` under the public prior: noise of standard deviation ``level`` added, then Heun's
    probability-flow ODE from ``level`` down to 0 on ``steps`` Karras levels."""
    if not SIGMA_MIN < level:
        raise ValueError(f"a variation level must exceed the schedule's floor {SIGMA_MIN}; got {level}.")
    x = images + level * randn(images.shape, generators(seeds), dtype=images.dtype)
    with torch.no_grad():
        return sample_heun(prior, x, get_sigmas_karras(steps, SIGMA_MIN, level)).clamp(0, 1)


@dataclasses.dataclass(frozen=True)
class Evolution:
    """The settings of one run: ``n`` synthetic images, ``levels`` (one variation level per round, so its length is
    the number of rounds; a final vote follows the last), the vote noise ``sigma`` and ``threshold``, the sampler's
    ``steps`` for the first population and the variations."""

    n: int
    levels: tuple[float, ...]
    sigma: float
    threshold: float
    steps: int = 18

    @property
    def votes(self) -> int:
        """Gaussian mechanisms spent: one per round and the final selection."""
        return len(self.levels) + 1

    def epsilon(self, delta: float) -> float:
        return epsilon_of(self.sigma, self.votes, delta)

    @classmethod
    def at_epsilon(cls, n: int, levels, epsilon: float, delta: float, *, threshold_sigmas: float = 2.0,
                   steps: int = 18) -> Evolution:
        """The settings whose votes give (``epsilon``, ``delta``): the vote noise from the accountant, counts cut below
        ``threshold_sigmas`` noise deviations."""
        unset = cls(n, tuple(levels), sigma=1.0, threshold=0.0, steps=steps)  # its vote count, from the rule above
        sigma = sigma_for(epsilon, unset.votes, delta)
        return dataclasses.replace(unset, sigma=sigma, threshold=threshold_sigmas * sigma)


class PriorSource:
    """The paper's source: a generative model. Fresh candidates are the public prior's samples (Heun, ``steps``
    levels); a variation re-noises a candidate to a level and denoises it back (:func:`vary`). The state that travels
    with a candidate is its image."""

    def __init__(self, prior: Denoiser, steps: int = 18):
        self.prior, self.steps = prior, steps

    def initial(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = sample_prior(self.prior, n, steps=self.steps, seed=seed, sampler="heun").clamp(0, 1)
        return images, images

    def vary(self, state: torch.Tensor, level: float, seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images = vary(self.prior, state, level, steps=self.steps, seeds=seeds)
        return images, images


def _take(state, chosen: torch.Tensor):
    """The states of the ``chosen`` candidates (a tensor is indexed, any other sequence listed)."""
    return state[chosen] if isinstance(state, torch.Tensor) else [state[i] for i in chosen.tolist()]


def private_evolution(source, private: torch.Tensor, settings: Evolution, *, seed: int = 0,
                      features: Callable[[torch.Tensor], torch.Tensor] = pooled_features,
                      callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """``settings.n`` synthetic images ``(n, 1, H, W)`` whose only contact with ``private`` is the noisy votes.

    ``source`` makes and varies the candidates: a denoiser (the public prior, wrapped in :class:`PriorSource` with
    ``settings.steps``), or any object with ``initial(n, seed) -> (images, state)`` and ``vary(state, level, seeds) ->
    (images, state)``, e.g. a simulator whose state is its parameters (Sim-PE, Lin et al. 2025). ``callback``
    receives ``{"round", "population", "state", "counts"}`` after every vote."""
    if not (hasattr(source, "initial") and hasattr(source, "vary")):
        source = PriorSource(source, settings.steps)
    gen = torch.Generator().manual_seed(seed)
    private_features = features(private)
    population, state = source.initial(settings.n, seed)
    for round_, level in enumerate((*settings.levels, None)):
        counts = noisy_votes(private_features, features(population), sigma=settings.sigma,
                             threshold=settings.threshold, generator=gen)
        if callback is not None:
            callback({"round": round_, "population": population, "state": state, "counts": counts})
        weights = counts if counts.sum() > 0 else torch.ones_like(counts)  # all cut: keep the population as it is
        chosen = torch.multinomial(weights, settings.n, replacement=True, generator=gen)
        population, state = population[chosen], _take(state, chosen)
        if level is not None:
            start = seed + (round_ + 1) * settings.n
            population, state = source.vary(state, level, range(start, start + settings.n))
    return population
