"""Input checks shared by the public API: each error names the problem and the fix."""

from __future__ import annotations

import math

import torch


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN or Inf; nothing downstream can recover from them."""
    if not torch.is_tensor(t):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}. Wrap it with torch.as_tensor(...).")
    bad = ~torch.isfinite(t)
    if bad.any():
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/Inf value(s) out of {t.numel()}; "
            "find the step that produced them (a division by zero, a diverging sampler) and fix it there."
        )


def check_shape(t: torch.Tensor, expected: tuple[int, ...], name: str, hint: str = "") -> None:
    """Raise unless ``t`` has shape ``(B, *expected)`` for some batch size B >= 1."""
    if not torch.is_tensor(t):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}. Wrap it with torch.as_tensor(...).")
    if t.dim() != len(expected) + 1 or tuple(t.shape[1:]) != tuple(expected) or t.shape[0] < 1:
        shape = "(B, " + ", ".join(str(s) for s in expected) + ")"
        raise ValueError(f"{name} must have shape {shape}; got {tuple(t.shape)}.{(' ' + hint) if hint else ''}")


def check_lam(lam, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Validate the proximal weight: a number or a ``(B,)`` tensor in [0, 1]; return it broadcastable."""
    if torch.is_tensor(lam):
        if lam.dim() == 0:
            lam = lam.reshape(1).expand(batch)
        if lam.shape != (batch,):
            raise ValueError(
                f"lam must be a number or a tensor of shape (B,) = ({batch},), one weight per sample; got {tuple(lam.shape)}."
            )
        values = lam.detach().to(torch.float64)
    else:
        try:
            value = float(lam)
        except (TypeError, ValueError):
            raise TypeError(f"lam must be a number in [0, 1] or a (B,) tensor; got {type(lam).__name__}.") from None
        values = torch.full((batch,), value, dtype=torch.float64)
    if not torch.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError(
            f"lam must lie in [0, 1] (0 keeps x, 1 projects onto {{x : A x = y}}); got {values.tolist()}. "
            "Pass a value inside the interval; it is not clipped for you."
        )
    shape = (batch,) + (1,) * (like.dim() - 1)
    return values.to(dtype=like.real.dtype if like.is_complex() else like.dtype, device=like.device).reshape(shape)


def check_noise_std(noise_std) -> float:
    """A measurement-noise standard deviation is a finite number >= 0."""
    try:
        value = float(noise_std)
    except (TypeError, ValueError):
        raise TypeError(f"noise_std must be a number >= 0; got {type(noise_std).__name__}.") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"noise_std must be a finite number >= 0 (0 means noise-free); got {noise_std}.")
    return value


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """An integer option such as an image size or a count."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return value
