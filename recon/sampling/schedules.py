"""Noise schedules: the forward SDE ``dx = f(t) x dt + g(t) dw`` with ``x_t ~ N(alpha(t) x_0, beta(t)^2 I)``, and the
discrete noise levels the samplers of :mod:`recon.sampling.loops` walk down (the ``get_sigmas_*`` functions, the
reconstruction methods' range ``SIGMA_MAX`` to ``SIGMA_MIN`` and the consistency sampler's ``DEFAULT_RENOISE``).

The names follow the post: ``alpha(t)`` scales the clean image and ``beta(t)`` is the noise standard deviation, so
``sigma(t) = beta(t) / alpha(t)`` is the noise level a denoiser sees after rescaling. For the linear SDE the two
satisfy ``alpha' = f alpha`` and ``(beta^2)' = 2 f beta^2 + g^2`` (Song et al. 2021, eqs. 5.50-5.51).
"""

from __future__ import annotations

import math

import torch

# Start and end of the methods' sampling schedule, in image units: at sigma = 10 a [0, 1] image is buried in noise.
SIGMA_MAX, SIGMA_MIN = 10.0, 0.005
DEFAULT_RENOISE = 0.4  # the consistency sampler's first re-noising level (about Song et al.'s two-step midpoint)


def get_sigmas_karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022, eq. 5) noise levels, ``n`` of them plus a final 0, float64."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def get_sigmas_geometric(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Song et al.'s VE levels, geometric from ``sigma_max`` to ``sigma_min``, plus a final 0, float64."""
    sigmas = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64))
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def get_sigmas_consistency(n: int, sigma_max: float, sigma_renoise: float, shrink: float = 0.1) -> torch.Tensor:
    """Levels of the multistep consistency sampler (Song et al. 2023, Alg. 1): ``sigma_max`` (pure noise), then
    ``n - 1`` re-noising levels geometric from ``sigma_renoise`` down to ``shrink * sigma_renoise``, plus a final 0;
    float64."""
    if not 0 < sigma_renoise <= sigma_max or not 0 < shrink <= 1:
        raise ValueError(f"need 0 < sigma_renoise <= sigma_max and 0 < shrink <= 1; got sigma_renoise={sigma_renoise}, "
                         f"sigma_max={sigma_max}, shrink={shrink}.")
    renoise = torch.exp(torch.linspace(math.log(sigma_renoise), math.log(sigma_renoise * shrink), max(n - 1, 0),
                                       dtype=torch.float64)) if n > 2 else torch.full((n - 1,), float(sigma_renoise),
                                                                                      dtype=torch.float64)
    return torch.cat([torch.tensor([float(sigma_max)], dtype=torch.float64), renoise, torch.zeros(1, dtype=torch.float64)])


def _as_tensor(t) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    if not torch.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ValueError(f"t must lie in [0, 1]; got {t.tolist()}.")
    return t


class SigmaSchedule:
    """The VE process indexed by its noise level, ``sigma(t) = t`` (Karras et al. 2022, Sec. 3): ``alpha = 1``,
    ``beta(t) = t``, ``f = 0``, ``g = sqrt(2 t)``. The samplers run in this form; ``t`` is any level >= 0."""

    def _t(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        if not torch.isfinite(t).all() or (t < 0).any():
            raise ValueError(f"t is a noise level >= 0 here; got {t.tolist()}.")
        return t

    def alpha(self, t):
        return torch.ones_like(self._t(t))

    def beta(self, t):
        return self._t(t)

    def f(self, t):
        return torch.zeros_like(self._t(t))

    def g(self, t):
        return (2 * self._t(t)).sqrt()

    def sigma(self, t):
        return self._t(t)

    def __repr__(self) -> str:
        return "SigmaSchedule()"


class VESchedule:
    """Variance-exploding SDE (SMLD): ``alpha = 1``, ``beta(t) = sigma_min (sigma_max / sigma_min)^t``, ``f = 0``."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}.")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def alpha(self, t):
        return torch.ones_like(_as_tensor(t))

    def beta(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** _as_tensor(t)

    def f(self, t):
        return torch.zeros_like(_as_tensor(t))

    def g(self, t):
        return self.beta(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def sigma(self, t):
        return self.beta(t) / self.alpha(t)

    def __repr__(self) -> str:
        return f"VESchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


class VPSchedule:
    """Variance-preserving SDE (DDPM) with linear rate ``b(t) = b_min + t (b_max - b_min)``.

    ``alpha(t) = exp(-B(t) / 2)`` with ``B(t) = int_0^t b``, ``beta(t) = sqrt(1 - alpha^2)``, ``f = -b / 2``,
    ``g = sqrt(b)``. The rate is called ``rate`` here because the post's ``beta`` is the noise standard deviation.
    """

    def __init__(self, rate_min: float = 0.1, rate_max: float = 20.0):
        if not 0 <= rate_min < rate_max:
            raise ValueError(f"need 0 <= rate_min < rate_max; got {rate_min}, {rate_max}.")
        self.rate_min, self.rate_max = rate_min, rate_max

    def rate(self, t):
        return self.rate_min + _as_tensor(t) * (self.rate_max - self.rate_min)

    def _integrated_rate(self, t):
        t = _as_tensor(t)
        return self.rate_min * t + 0.5 * (self.rate_max - self.rate_min) * t**2

    def alpha(self, t):
        return torch.exp(-0.5 * self._integrated_rate(t))

    def beta(self, t):
        return torch.sqrt(-torch.expm1(-self._integrated_rate(t)))

    def f(self, t):
        return -0.5 * self.rate(t)

    def g(self, t):
        return torch.sqrt(self.rate(t))

    def sigma(self, t):
        return self.beta(t) / self.alpha(t)

    def __repr__(self) -> str:
        return f"VPSchedule(rate_min={self.rate_min}, rate_max={self.rate_max})"
