"""Noise schedules of the forward SDE ``dx = f(t) x dt + g(t) dw``: ``x_t ~ N(alpha(t) x_0, beta(t)^2 I)``.

The names follow the post: ``alpha(t)`` scales the clean image and ``beta(t)`` is the noise standard deviation, so
``sigma(t) = beta(t) / alpha(t)`` is the noise level a denoiser sees after rescaling. For the linear SDE the two
satisfy ``alpha' = f alpha`` and ``(beta^2)' = 2 f beta^2 + g^2`` (Song et al. 2021, eqs. 5.50-5.51).
"""

from __future__ import annotations

import math

import torch


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
