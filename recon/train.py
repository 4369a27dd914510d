"""Train an unconditional score prior by denoising score matching (EDM loss, Karras et al. 2022, eq. 2 and Table 1).

    python -m recon.train --data head_ct --size 64 --steps 2000 --out checkpoints/head_ct_64

Writes ``OUT/model.safetensors`` (EMA weights) and ``OUT/card.json`` (kind, loss, data, config, steps, wall time, loss
curve, sha256, the command, the code version, the hardware and precision); ``OUT/train_state.pt`` holds what
``--resume`` needs to continue exactly where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
from pathlib import Path

import torch

from recon.data import brain_slices, head_ct_phantoms
from recon.models.checkpoints import build_model, save_checkpoint
from recon.models.precision import PRECISIONS, resolve
from recon.provenance import provenance
from recon.training import LOSSES, EpochBatches, TrainConfig, TrainState, train

DATASETS = {"head_ct": head_ct_phantoms, "brain": brain_slices}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m recon.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=sorted(DATASETS), required=True)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=8192, help="training images drawn once from the train split")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--loss", choices=sorted(LOSSES), default="edm")
    for field in dataclasses.fields(TrainConfig):
        p.add_argument("--" + field.name.replace("_", "-"), type=type(field.default), default=field.default)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--mults", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network arithmetic; auto: bf16 where the hardware computes it natively, else fp32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    p.add_argument("--time-limit", type=float, default=None,
                   help="minutes: stop early (after a checkpoint); the card then records the --steps that reproduce it")
    return p.parse_args(argv)


def without(argv: list[str], drop: dict[str, int]) -> list[str]:
    """``argv`` without the flags in ``drop`` (flag -> how many values follow it)."""
    kept, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg in drop:
            skip = drop[arg]
        elif arg.split("=", 1)[0] in drop:  # --flag=value
            continue
        else:
            kept.append(arg)
    return kept


def model_config(args) -> dict:
    return {"data": args.data, "image_size": args.size, "n_train": args.n_train, "split": "train", "seed": args.seed,
            "net": {"base": args.base, "mults": list(args.mults), "blocks": args.blocks, "emb_dim": 128,
                    "dropout": 0.0},
            "denoiser": {"sigma_min": 0.002, "sigma_max": 40.0, "sigma_data": 0.5}, "batch": args.batch}


def write_card(state: TrainState, args, config: TrainConfig, loss, command: str, device) -> Path:
    model_cfg = model_config(args)
    card = {"kind": "edm", "loss": loss.config(), "config": {**model_cfg, **dataclasses.asdict(config),
                                                              "precision": resolve(args.precision, device)},
            "parameters": sum(p.numel() for p in state.model.net.parameters()), "steps_done": state.step,
            "wall_time_s": round(state.elapsed, 1), **provenance(command, device, args.precision), "loss_curve": state.curve,
            "final_loss": state.curve[-1][1] if state.curve else math.nan}
    return save_checkpoint(state.ema, card, args.out)


def main(argv=None) -> Path:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python -m recon.train " + shlex.join(without(given, {"--resume": 0, "--time-limit": 1}))
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    settings["clip_grad"] = settings["clip_grad"] or None  # --clip-grad 0 turns clipping off
    config = TrainConfig(**settings)
    model = build_model("edm", model_config(args)).to(device)
    model.net.to(memory_format=torch.channels_last)
    model.precision = args.precision
    loss = LOSSES[args.loss]()
    images = DATASETS[args.data](args.n_train, args.size, "train", args.seed)
    batches = EpochBatches.shuffled(images, args.batch, args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    state = TrainState.create(model, torch.optim.Adam(model.net.parameters(), lr=config.lr), generator)
    state_path = args.out / "train_state.pt"
    if args.resume and state_path.exists():
        state.load(state_path, batches)
    train(state, loss, batches, config, device=device, description=f"train {args.data}",
          checkpoint=lambda s: s.save(state_path, batches),
          time_limit=None if args.time_limit is None else 60 * args.time_limit)
    if state.step < config.steps:  # stopped by the time limit: the same run with fewer steps reproduces it exactly
        config.steps = state.step
        command = "python -m recon.train " + shlex.join(without(given, {"--resume": 0, "--time-limit": 1, "--steps": 1})
                                                         + ["--steps", str(state.step)])
    path = write_card(state, args, config, loss, command, device)
    print(json.dumps({k: json.loads((path / "card.json").read_text())[k]
                      for k in ("parameters", "wall_time_s", "hardware", "final_loss")}))
    return path


if __name__ == "__main__":
    main()
