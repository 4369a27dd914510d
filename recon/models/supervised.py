"""Supervised post-processing networks (FBPConvNet-style, Jin et al. 2017): a U-Net that maps the classical
reconstruction (FBP for CT, zero-filled for MRI) to the image, trained on pairs from the settings its card names.
Unlike a prior, it learns one inverse, or a family of them; the shift chapter measures what that costs when the
scanner changes."""

from __future__ import annotations

import torch
from torch import nn

from recon._checks import check_finite
from recon.models.checkpoints import build_unet, register_model_kind
from recon.models.precision import autocast, check_precision


class PostProcessingNet(nn.Module):
    """``x = x_c + F(x_c)`` for a classical reconstruction ``x_c`` (residual learning, as FBPConvNet); ``settings``
    are the measurement settings it was trained on (:func:`recon.operators.settings.make_operator` names)."""

    def __init__(self, net: nn.Module, image_size: int, settings: list[str], precision: str = "auto"):
        super().__init__()
        self.net, self.image_size, self.settings = net, image_size, list(settings)
        self.precision = check_precision(precision)

    def forward(self, x_classical: torch.Tensor) -> torch.Tensor:
        if x_classical.dim() != 4 or tuple(x_classical.shape[1:]) != (1, self.image_size, self.image_size):
            raise ValueError(f"this network was trained on (B, 1, {self.image_size}, {self.image_size}) images; got "
                             f"{tuple(x_classical.shape)}.")
        check_finite(x_classical, "network input")
        dtype = next(self.net.parameters()).dtype
        zero = torch.zeros(x_classical.shape[0], device=x_classical.device, dtype=dtype)
        with autocast(self.precision, x_classical.device):
            residual = self.net(x_classical.to(dtype), zero)  # one constant noise embedding: no noise level here
        return x_classical + residual.to(x_classical.dtype)


@register_model_kind("supervised")
def build_supervised(config: dict) -> PostProcessingNet:
    """A post-processing network (:class:`PostProcessingNet`) from a card's config."""
    return PostProcessingNet(build_unet(config), config["image_size"], config["settings"])
