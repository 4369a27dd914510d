"""A small U-Net for 1-channel images: GroupNorm, SiLU, a sinusoidal noise embedding, 3 resolutions."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style embedding of the scalar noise conditioning ``c_noise`` (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c_noise.device, dtype=torch.float32) / half)
    angles = c_noise.float()[:, None] * 1000.0 * freqs[None]  # c_noise = ln(sigma)/4 spans about [-2, 1.5]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int = 8, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift  # adaptive GroupNorm: the noise level modulates each channel
        h = self.conv2(self.dropout(nn.functional.silu(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """``F(x, c_noise)`` for ``(B, 1, H, W)`` inputs, ``H`` and ``W`` divisible by ``2**(len(mults)-1)``.

    Args:
        base: channels at full resolution.
        mults: channel multipliers per resolution (3 entries: 64, 32, 16 pixels at 64x64 input).
        blocks: residual blocks per resolution on the way down (one more on the way up).
        emb_dim: width of the noise embedding.
        classes: class labels the network is conditioned on (0: unconditional). With ``classes > 0`` a learnt
            embedding per label is added to the noise embedding; label ``classes`` is the "no label" entry, used when
            ``labels`` is None (classifier-free conditioning, Ho & Salimans 2022).
    """

    def __init__(self, base: int = 32, mults: tuple[int, ...] = (1, 2, 4), blocks: int = 1, emb_dim: int = 128,
                 dropout: float = 0.0, classes: int = 0):
        super().__init__()
        self.config = {"base": base, "mults": tuple(mults), "blocks": blocks, "emb_dim": emb_dim, "dropout": dropout,
                       **({"classes": classes} if classes else {})}
        self.emb_dim, self.classes = emb_dim, classes
        self.embed = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_embed = nn.Embedding(classes + 1, emb_dim) if classes else None
        self.stem = nn.Conv2d(1, base, 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [base], base
        for level, mult in enumerate(mults):
            for _ in range(blocks):
                self.down.append(ResBlock(c, base * mult, emb_dim, dropout=dropout))
                c = base * mult
                skips.append(c)
            if level < len(mults) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim, dropout=dropout), ResBlock(c, c, emb_dim, dropout=dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), base * mult, emb_dim, dropout=dropout))
                c = base * mult
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(sinusoidal_embedding(c_noise, self.emb_dim))
        if self.label_embed is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.classes, dtype=torch.int64, device=x.device)
            emb = emb + self.label_embed(labels).to(emb.dtype)
        elif labels is not None:
            raise ValueError("this network is unconditional (classes=0) and takes no labels; drop `labels`, or train "
                             "a class-conditional prior (python -m recon.train ... --classes N).")
        h = self.stem(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, ResBlock) else layer(h)
        return self.out(h)
