"""Checkpoints: safetensors weights plus a JSON card; loading verifies the checksum before reading a single weight."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from recon.denoiser import EDMDenoiser
from recon.networks import UNet

WEIGHTS, CARD = "model.safetensors", "card.json"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(net: UNet, card: dict, out: Path) -> Path:
    """Write the network's weights (float16, to keep checkpoints a few MB) and the card with their sha256."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS
    save_file({k: v.detach().to(torch.float16).contiguous().cpu() for k, v in net.state_dict().items()}, str(weights))
    card = dict(card, weights=WEIGHTS, sha256=sha256(weights), storage_dtype="float16")
    (out / CARD).write_text(json.dumps(card, indent=1) + "\n")
    return out


def resolve(name_or_path: str | Path) -> Path:
    """A shipped prior's name (``"head_ct"``, ``"brain"``) or a checkpoint folder."""
    path = Path(name_or_path)
    if not path.exists() and isinstance(name_or_path, str) and "/" not in name_or_path:
        path = SHIPPED / f"{name_or_path}_64"
        if not path.exists():
            shipped = sorted(p.name.rsplit("_", 1)[0] for p in SHIPPED.glob("*_64")) if SHIPPED.exists() else []
            raise FileNotFoundError(f"no shipped prior named {name_or_path!r}; choose one of {shipped} or pass a path.")
    for f in (WEIGHTS, CARD):
        if not (path / f).exists():
            raise FileNotFoundError(
                f"checkpoint folder {path} has no {f}; it needs {WEIGHTS} and {CARD} as written by `python -m recon.train`."
            )
    return path


def load_card(name_or_path: str | Path) -> dict:
    return json.loads((resolve(name_or_path) / CARD).read_text())


def load_denoiser(name_or_path: str | Path, device: str | torch.device = "cpu") -> EDMDenoiser:
    """Load a prior's EMA denoiser after checking the weights' sha256 against its card."""
    path = resolve(name_or_path)
    card = json.loads((path / CARD).read_text())
    actual = sha256(path / WEIGHTS)
    if actual != card.get("sha256"):
        raise ValueError(
            f"{path / WEIGHTS} does not match the sha256 in its card ({actual[:12]}... vs "
            f"{str(card.get('sha256'))[:12]}...): the file was changed or truncated. Restore it, or retrain with the "
            f"card's command: {card.get('command')}"
        )
    config = card["config"]
    net = UNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["net"].items()})
    state = load_file(str(path / WEIGHTS))
    net.load_state_dict({k: v.float() for k, v in state.items()})
    net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    denoiser = EDMDenoiser(net, image_size=config["image_size"], **config["denoiser"])
    denoiser.card = card
    return denoiser.to(device)
