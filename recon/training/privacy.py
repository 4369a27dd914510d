"""Differentially private training (DP-SGD, Abadi et al. 2016) for the one training loop, through opacus.

Each step draws a Poisson sample (every private image joins with probability ``q``, independently), clips every
example's gradient to norm ``C``, sums, adds Gaussian noise of standard deviation ``sigma C`` and divides by the
*expected* batch ``q N``. ``sigma`` is calibrated so that ``steps`` such steps spend at most ``epsilon`` at ``delta``
under opacus's PRV accountant (Gopi et al. 2021); a second accountant of another kind and code base (opacus's RDP,
Mironov 2017, and Microsoft's ``prv-accountant``) checks the figure on the card.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import warnings

import torch

ACCOUNTANTS = ("prv", "rdp")


@dataclasses.dataclass
class DPConfig:
    """The privacy target: ``epsilon`` at ``delta`` (``delta <= 1/N`` is checked against the data), the per-example
    clipping norm ``clip`` and the accountant that calibrates the noise."""

    epsilon: float
    delta: float = 1e-5
    clip: float = 1.0
    accountant: str = "prv"

    def __post_init__(self):
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"epsilon must be a finite number > 0 (train without DP for epsilon = inf); got "
                             f"{self.epsilon}.")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), and at most 1/N for N private images; got {self.delta}.")
        if not self.clip > 0:
            raise ValueError(f"the clipping norm must be > 0; got {self.clip}.")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"unknown accountant {self.accountant!r}; choose one of {list(ACCOUNTANTS)}.")

    def check_data(self, n: int, batch: int) -> float:
        """The sampling rate ``batch / n``, after checking ``delta <= 1/n`` and ``batch < n``."""
        if self.delta > 1 / n:
            raise ValueError(f"delta = {self.delta} exceeds 1/N = {1 / n:.2e} for N = {n} private images: a guarantee "
                             "that weak allows releasing an image outright. Pass a smaller --dp-delta.")
        if not 0 < batch < n:
            raise ValueError(f"the expected batch must lie in (0, N = {n}); got {batch}.")
        return batch / n


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():  # opacus warns about optimal alpha orders at the edge of its grid
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "prv") -> float:
    """The smallest ``sigma`` (to opacus's tolerance 0.01 in epsilon) whose ``steps`` Poisson-sampled Gaussian steps
    spend at most ``epsilon`` at ``delta``."""
    from opacus.accountants.utils import get_noise_multiplier

    return float(_quiet(get_noise_multiplier, target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                        steps=steps, accountant=accountant, epsilon_tolerance=0.01))


def epsilon_spent(sigma: float, sample_rate: float, steps: int, delta: float, accountant: str = "prv") -> float:
    """Epsilon at ``delta`` after ``steps`` steps, by opacus's ``accountant`` (PRV: its upper bound)."""
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = {"prv": PRVAccountant, "rdp": RDPAccountant}[accountant]()
    acc.history = [(sigma, sample_rate, steps)]
    return float(_quiet(acc.get_epsilon, delta))


def epsilon_prv_accountant(sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon by Microsoft's ``prv-accountant`` (Gopi et al. 2021; the estimate between its bounds): the code that
    opacus's PRV accountant was ported from, so a check of the port rather than of the method."""
    from prv_accountant import PoissonSubsampledGaussianMechanism, PRVAccountant

    prv = PoissonSubsampledGaussianMechanism(noise_multiplier=sigma, sampling_probability=sample_rate)
    acc = PRVAccountant(prvs=prv, max_self_compositions=steps, eps_error=0.01, delta_error=delta / 1000)
    return float(acc.compute_epsilon(delta=delta, num_self_compositions=[steps])[1])


def _second_opinion(sigma: float, sample_rate: float, steps: int, delta: float) -> float | str:
    """``prv-accountant``'s epsilon, or why it could not give one (its discretisation refuses some tiny runs)."""
    try:
        return round(epsilon_prv_accountant(sigma, sample_rate, steps, delta), 4)
    except RuntimeError as error:
        return f"not computed: {error}"


ACCOUNTANT_TOLERANCE = 0.02  # |opacus PRV - prv-accountant| in epsilon (each is discretised to 0.01)


def privacy_card(config: DPConfig, sigma: float, sample_rate: float, steps: int, n: int) -> dict:
    """What the checkpoint card records: the guarantee, how it was accounted, and everything that reproduces it.
    Raises when the second PRV implementation disagrees beyond :data:`ACCOUNTANT_TOLERANCE`, or when the tight
    accountant exceeds the RDP bound."""
    card = _card(config, sigma, sample_rate, steps, n)
    other = card["epsilon_prv_accountant"]
    if isinstance(other, float) and abs(other - card["epsilon"]) > ACCOUNTANT_TOLERANCE:
        raise RuntimeError(f"the accountants disagree: opacus PRV {card['epsilon']}, prv-accountant {other}.")
    if card["epsilon"] > card["epsilon_rdp"] + 0.01:
        raise RuntimeError(f"the PRV bound {card['epsilon']} exceeds the RDP bound {card['epsilon_rdp']}.")
    return card


def _card(config: DPConfig, sigma: float, sample_rate: float, steps: int, n: int) -> dict:
    return {"epsilon": round(epsilon_spent(sigma, sample_rate, steps, config.delta, config.accountant), 4),
            "target_epsilon": config.epsilon, "delta": config.delta, "accountant": f"opacus {config.accountant}",
            "epsilon_rdp": round(epsilon_spent(sigma, sample_rate, steps, config.delta, "rdp"), 4),
            "epsilon_prv_accountant": _second_opinion(sigma, sample_rate, steps, config.delta),
            "noise_multiplier": sigma, "sample_rate": sample_rate, "steps": steps, "clip": config.clip,
            "n_private": n, "expected_batch": round(sample_rate * n), "sampling": "Poisson",
            "accountant_tolerance": ACCOUNTANT_TOLERANCE,
            "covers": "the private fine-tuning steps of this model alone (public pretraining is public; the EMA, Adam "
                      "and sampling are post-processing); releasing several models trained on the same images "
                      "composes their guarantees",
            "randomness": "the Poisson draws and the noise come from OS entropy (secrets) and are not recorded: a "
                          "recorded seed would let anyone replay the noise; rerunning the command gives another model "
                          "with the same guarantee"}


def secret_seed() -> int:
    """A seed from the operating system's entropy, never recorded."""
    return secrets.randbits(63)


class PoissonBatches:
    """Poisson-sampled batches of ``(images, labels)``: each image joins each batch with probability
    ``sample_rate``, independently (the sampling the accountant assumes; batches vary in size and can be empty).

    ``seed`` None draws a secret one. The state (saved in ``train_state.pt``, which is never released) holds this
    sampler's generator, the DP optimiser's ``noise_generator`` when given, and the ``settings`` the noise was
    calibrated for: a resumed run continues both random streams and refuses other privacy settings."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, sample_rate: float, seed: int | None = None,
                 noise_generator: torch.Generator | None = None, settings: dict | None = None):
        if not 0 < sample_rate < 1:
            raise ValueError(f"sample_rate must lie in (0, 1); got {sample_rate}.")
        self.images, self.labels, self.sample_rate = images, labels, sample_rate
        self.generator = torch.Generator().manual_seed(secret_seed() if seed is None else seed)
        self.noise_generator, self.settings = noise_generator, settings or {}

    def __next__(self):
        take = torch.rand(self.images.shape[0], generator=self.generator) < self.sample_rate
        return self.images[take] if self.labels is None else (self.images[take], self.labels[take])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "settings": self.settings,
                "noise": None if self.noise_generator is None else self.noise_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("settings", {}) != self.settings:
            raise ValueError(f"this run's privacy settings {self.settings} differ from the interrupted run's "
                             f"{state.get('settings')}: resume with the same command, or start a new --out.")
        self.generator.set_state(state["generator"])
        if self.noise_generator is not None and state.get("noise") is not None:
            self.noise_generator.set_state(state["noise"])


def make_private(net: torch.nn.Module, optimizer: torch.optim.Optimizer, config: DPConfig, sample_rate: float,
                 n: int, steps: int, noise_seed: int | None = None):
    """Per-example gradient hooks on ``net`` (its parameters and ``state_dict`` keys unchanged) and a DP optimiser
    around ``optimizer`` with the calibrated noise, drawn on the parameters' device from ``noise_seed`` (None: a
    secret seed). Returns ``(dp_optimizer, hooks, card)``; call ``hooks.cleanup()`` when training ends."""
    from opacus.grad_sample import GradSampleHooks
    from opacus.optimizers import DPOptimizer

    sigma = noise_multiplier(config.epsilon, config.delta, sample_rate, steps, config.accountant)
    card = privacy_card(config, sigma, sample_rate, steps, n)
    hooks = GradSampleHooks(net, batch_first=True, loss_reduction="mean", strict=True)
    hooks.forbid_grad_accumulation()
    device = next(net.parameters()).device
    noise = torch.Generator(device=device).manual_seed(secret_seed() if noise_seed is None else noise_seed)
    dp_optimizer = DPOptimizer(optimizer, noise_multiplier=sigma, max_grad_norm=config.clip,
                               expected_batch_size=round(sample_rate * n), loss_reduction="mean", generator=noise)
    return dp_optimizer, hooks, card
