"""Checkpoints: safetensors weights plus a JSON card; loading verifies the checksums before reading a single weight,
then builds the model class that the card's ``kind`` names through :data:`MODEL_KINDS` and checks that the weights
fit it.

Two checksums cover a checkpoint. The card's ``sha256`` is the weights file's. The card's own ``card_sha256`` is the
SHA-256 of the card's canonical JSON (sorted keys, no whitespace) without that entry (:func:`card_digest`), so an
edited card (another kind, image size or network) is refused; the shipped cards carry it too. A card written before
it existed loads on the weights' checksum alone, with a warning; for every card, the network its ``kind`` and
``config`` build must have the weights' tensor names and shapes. Both files are written atomically (:func:`recon.files.atomic_write`)."""

from __future__ import annotations

import hashlib
import json
import sysconfig
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from recon.files import atomic_write, atomic_write_text, sha256
from recon.models.denoiser import Denoiser, EDMDenoiser
from recon.models.networks import UNet
from recon.models.precision import check_precision

WEIGHTS, CARD = "model.safetensors", "card.json"
CARD_DIGEST = "card_sha256"  # the card's own checksum (see the module's docstring)
# Shipped checkpoints: the checkout's folder, else where `pip install` put them (pyproject's data-files).
SHIPPED_DIRS = (Path(__file__).resolve().parent.parent.parent / "checkpoints",
                Path(sysconfig.get_paths()["data"]) / "share" / "recon" / "checkpoints")

# kind -> builder(config) returning an untrained model whose ``.net`` receives the stored weights.
MODEL_KINDS: dict[str, Callable[[dict], Denoiser]] = {}


def register_model_kind(name: str):
    """Register a builder ``config -> Denoiser`` under the card's ``kind``."""

    def decorator(builder):
        if name in MODEL_KINDS:
            raise ValueError(f"a model kind named {name!r} is registered already; choose another name.")
        MODEL_KINDS[name] = builder
        return builder

    return decorator


def build_unet(config: dict) -> UNet:
    """The U-Net a card's ``config["net"]`` describes (JSON lists back to tuples)."""
    return UNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["net"].items()})


@register_model_kind("edm")
def build_edm(config: dict) -> EDMDenoiser:
    """An EDM-preconditioned U-Net (:class:`recon.models.denoiser.EDMDenoiser`) from a card's config."""
    return EDMDenoiser(build_unet(config), image_size=config["image_size"], **config["denoiser"])


def build_model(kind: str, config: dict) -> Denoiser:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; registered kinds are {sorted(MODEL_KINDS)} "
                         "(register a builder with recon.models.register_model_kind).")
    try:
        return MODEL_KINDS[kind](config)
    except KeyError as missing:
        raise ValueError(f"a {kind!r} model needs config[{missing}], which this card's config lacks; a card of "
                         "another kind, or an edited one: restore the card as training wrote it.") from None


def card_digest(card: dict) -> str:
    """The card's own checksum: SHA-256 of its canonical JSON (sorted keys, no whitespace) without ``card_sha256``."""
    body = {k: v for k, v in card.items() if k != CARD_DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_checkpoint(net: nn.Module, card: dict, out: Path) -> Path:
    """Write the network's weights (float16, to keep checkpoints a few MB) and the card with their sha256 and its own
    (:func:`card_digest`), each file atomically. The card must name its model ``kind`` and carry the ``config`` that
    kind's builder reads."""
    if card.get("kind") not in MODEL_KINDS or "config" not in card:
        raise ValueError(f"a card needs a registered 'kind' ({sorted(MODEL_KINDS)}) and a 'config'; got keys {sorted(card)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS
    tensors = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in net.state_dict().items()}
    atomic_write(weights, lambda path: save_file(tensors, str(path)))
    card = json.loads(json.dumps(dict(card, weights=WEIGHTS, sha256=sha256(weights), storage_dtype="float16")))
    atomic_write_text(out / CARD, json.dumps({**card, CARD_DIGEST: card_digest(card)}, indent=1) + "\n")
    return out


def shipped_stems() -> tuple[str, ...]:
    """The data names that begin a shipped prior's folder, longest first (the first that prefixes a name names the
    data): every unlabelled family of :data:`recon.data.families.FAMILIES`. A labelled (class-conditional) family's
    priors are filed under the family its name extends: ``head_ct_private`` -> ``head_ct_64_private``."""
    from recon.data.families import FAMILIES

    return tuple(sorted((f.name for f in FAMILIES.values() if f.labels is None), key=len, reverse=True))


def shipped_folder(name: str) -> str:
    """The folder of a shipped checkpoint: ``head_ct`` -> ``head_ct_64``, ``head_ct_cm`` -> ``head_ct_64_cm``,
    ``head_ct_sup_ct16`` -> ``head_ct_64_sup_ct16`` (the data set, the image size, then what kind of network)."""
    for data in shipped_stems():
        if name == data:
            return f"{data}_64"
        if name.startswith(data + "_"):
            return f"{data}_64_{name[len(data) + 1:]}"
    return f"{name}_64"


def shipped_name(folder: str) -> str:
    return folder.replace("_64_", "_").replace("_64", "")


def resolve(name_or_path: str | Path) -> Path:
    """A shipped checkpoint's name (``"head_ct"``, ``"brain"``, and their consistency models ``"head_ct_cm"``,
    ``"brain_cm"``) or a checkpoint folder."""
    path = Path(name_or_path)
    if not path.exists() and isinstance(name_or_path, str) and "/" not in name_or_path:
        folder = shipped_folder(name_or_path)
        found = [d / folder for d in SHIPPED_DIRS if (d / folder).exists()]
        if not found:
            shipped = sorted({shipped_name(p.name) for d in SHIPPED_DIRS if d.exists() for p in d.glob("*_64*")})
            raise FileNotFoundError(f"no shipped prior named {name_or_path!r}; choose one of {shipped} or pass a path.")
        path = found[0]
    for f in (WEIGHTS, CARD):
        if not (path / f).exists():
            raise FileNotFoundError(
                f"checkpoint folder {path} has no {f}; it needs {WEIGHTS} and {CARD} as written by `python -m recon.train`."
            )
    return path


def load_card(name_or_path: str | Path) -> dict:
    """A checkpoint's card, checked against its ``card_sha256`` where it carries one (see the module's docstring)."""
    path = resolve(name_or_path) / CARD
    try:
        card = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not readable JSON ({error}): it was truncated or edited; restore it, or retrain "
                         "with `python -m recon.train`.") from None
    if CARD_DIGEST not in card:
        warnings.warn(f"{path} carries no {CARD_DIGEST} (written before cards were checksummed): an edit of it would go "
                      "unnoticed except through the weights' shapes; retrain, or add the checksum with "
                      "recon.models.checkpoints.card_digest.", stacklevel=2)
    elif card[CARD_DIGEST] != card_digest(card):
        raise ValueError(f"{path} does not match its {CARD_DIGEST} ({card_digest(card)[:12]}... vs "
                         f"{str(card[CARD_DIGEST])[:12]}...): the card was edited after training. Restore the card as "
                         f"training wrote it, or retrain with its command: {card.get('command')}")
    return card


def verified_weights(path: Path, card: dict) -> dict:
    actual = sha256(path / WEIGHTS)
    if actual != card.get("sha256"):
        raise ValueError(
            f"{path / WEIGHTS} does not match the sha256 in its card ({actual[:12]}... vs "
            f"{str(card.get('sha256'))[:12]}...): the file was changed or truncated. Restore it, or retrain with the "
            f"card's command: {card.get('command')}"
        )
    return load_file(str(path / WEIGHTS))


def check_weights_fit(net: nn.Module, weights: dict, path: Path, card: dict) -> None:
    """The network the card describes must have the weights' tensors, name for name and shape for shape."""
    wanted = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in weights.items()}
    problems = ([f"{k}: card {wanted[k]}, weights {stored[k]}" for k in wanted.keys() & stored.keys()
                 if wanted[k] != stored[k]]
                + [f"{k} missing from the weights" for k in wanted.keys() - stored.keys()]
                + [f"{k} not in the card's network" for k in stored.keys() - wanted.keys()])
    if problems:
        raise ValueError(f"{path}: the network its {CARD} describes (kind {card.get('kind')!r}, net "
                         f"{card['config'].get('net')}) does not fit {WEIGHTS} ({len(problems)} tensor(s) disagree, "
                         f"e.g. {'; '.join(sorted(problems)[:3])}). The card was edited or belongs to other weights: "
                         f"restore the card as training wrote it, or retrain with its command: {card.get('command')}")


def load_weights(net: nn.Module, path: Path, card: dict) -> None:
    """Load a checkpoint's weights into ``net`` (built from ``card``), after their checksum and shapes check out."""
    weights = verified_weights(path, card)
    check_weights_fit(net, weights, path, card)
    net.load_state_dict({k: v.float() for k, v in weights.items()})


def load_denoiser(name_or_path: str | Path, device: str | torch.device = "cpu", precision: str = "auto") -> Denoiser:
    """Load a checkpoint's (EMA) model after checking its card and weights (see the module's docstring); the card's
    ``kind`` picks the class. ``precision`` is the network's arithmetic (see :mod:`recon.models.precision`)."""
    path = resolve(name_or_path)
    card = load_card(path)
    if "kind" not in card:
        raise ValueError(f"{path / CARD} names no model 'kind'; add one of {sorted(MODEL_KINDS)} (the shipped priors "
                         "are 'edm').")
    model = build_model(card["kind"], card["config"])
    load_weights(model.net, path, card)
    model.net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    model.card = card
    model.precision = check_precision(precision)
    return model.to(device)
