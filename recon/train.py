"""Train an unconditional score prior by denoising score matching (EDM loss, Karras et al. 2022, eq. 2 and Table 1).

    python -m recon.train --data head_ct --size 64 --steps 2000 --out checkpoints/head_ct_64

Writes ``OUT/model.safetensors`` (EMA weights) and ``OUT/card.json`` (data, config, steps, wall time, loss curve,
sha256, the command, the hardware); ``OUT/train_state.pt`` holds what ``--resume`` needs.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from recon.checkpoints import save_checkpoint
from recon.data import brain_slices, head_ct_phantoms
from recon.denoiser import EDMDenoiser
from recon.networks import UNet

DATASETS = {"head_ct": head_ct_phantoms, "brain": brain_slices}


def edm_loss(denoiser: EDMDenoiser, x0: torch.Tensor, generator: torch.Generator, p_mean=-1.2, p_std=1.2):
    """EDM's weighted denoising loss; ``sigma`` is log-normal in the [-1, 1] space of the preconditioning."""
    B = x0.shape[0]
    s = torch.exp(p_mean + p_std * torch.randn(B, generator=generator, device=x0.device))
    sigma = s / 2  # image units
    noise = torch.randn(x0.shape, generator=generator, device=x0.device) * sigma.reshape(-1, 1, 1, 1)
    sd = denoiser.sigma_data
    weight = (s**2 + sd**2) / (s * sd) ** 2
    error = 2 * (denoiser(x0 + noise, sigma) - x0)  # the error in the [-1, 1] space
    return (weight.reshape(-1, 1, 1, 1) * error.float() ** 2).mean()


def ema_beta(step: int, halflife: float, rampup: float) -> float:
    """EMA decay after ``step`` steps: half-life ``min(halflife, rampup * step)`` steps (Karras et al. 2022, App. F)."""
    return 0.5 ** (1.0 / max(min(halflife, rampup * step), 1e-8))


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m recon.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=sorted(DATASETS), required=True)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=8192, help="training images drawn once from the train split")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema-halflife", type=float, default=300.0, help="EMA half-life in steps")
    p.add_argument("--ema-rampup", type=float, default=0.25, help="half-life at most this fraction of the steps so far")
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--mults", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    return p.parse_args(argv)


def main(argv=None) -> Path:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python -m recon.train " + shlex.join([a for a in given if a != "--resume"])
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    images = DATASETS[args.data](args.n_train, args.size, "train", args.seed).to(device, memory_format=torch.channels_last)
    net = UNet(base=args.base, mults=tuple(args.mults), blocks=args.blocks).to(device, memory_format=torch.channels_last)
    denoiser = EDMDenoiser(net, image_size=args.size).to(device)
    ema = UNet(**net.config).to(device)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    state_path = args.out / "train_state.pt"
    step, curve, elapsed = 0, [], 0.0
    if args.resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=True)
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu() if device.type == "cpu" else state["generator"])
        step, curve, elapsed = int(state["step"]), [list(map(float, c)) for c in state["curve"].tolist()], float(state["elapsed"])
    n_params = sum(p.numel() for p in net.parameters())

    def save_state():
        torch.save({"net": net.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(), "step": step, "curve": torch.tensor(curve),
                    "elapsed": elapsed}, state_path)

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    window, start = [], time.perf_counter() - elapsed
    bar = tqdm(total=args.steps, initial=step, desc=f"train {args.data}", mininterval=5.0)
    while step < args.steps:
        idx = torch.randint(0, images.shape[0], (args.batch,), generator=generator, device=device)
        x0 = images[idx]
        flip = torch.rand(args.batch, generator=generator, device=device) < 0.5
        x0 = torch.where(flip.reshape(-1, 1, 1, 1), x0.flip(-1), x0)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
        with autocast:
            loss = edm_loss(denoiser, x0, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():  # EMA with a ramped half-life, so early weights do not linger (EDM's ema_rampup)
            beta = ema_beta(step + 1, args.ema_halflife, args.ema_rampup)
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.lerp_(pn, 1 - beta)
        step += 1
        window.append(float(loss.detach()))
        if step % 50 == 0 or step == args.steps:
            curve.append([step, sum(window) / len(window)])
            window = []
            bar.set_postfix(loss=f"{curve[-1][1]:.4f}")
        bar.update(1)
        if step % args.checkpoint_every == 0 or step == args.steps:
            elapsed = time.perf_counter() - start
            save_state()
    bar.close()
    elapsed = time.perf_counter() - start
    config = {"data": args.data, "image_size": args.size, "n_train": args.n_train, "split": "train", "seed": args.seed,
              "net": net.config, "denoiser": {"sigma_min": denoiser.sigma_min, "sigma_max": denoiser.sigma_max,
                                              "sigma_data": denoiser.sigma_data},
              "steps": args.steps, "batch": args.batch, "lr": args.lr, "warmup": args.warmup,
              "ema_halflife": args.ema_halflife, "ema_rampup": args.ema_rampup,
              "precision": args.precision}
    card = {"config": config, "parameters": n_params, "wall_time_s": round(elapsed, 1), "hardware": hardware(device),
            "command": command, "loss_curve": curve, "final_loss": curve[-1][1] if curve else math.nan}
    path = save_checkpoint(ema, card, args.out)
    print(json.dumps({k: card[k] for k in ("parameters", "wall_time_s", "hardware", "final_loss")}))
    return path


if __name__ == "__main__":
    main()
