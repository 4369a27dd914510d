"""Train an unconditional score prior by denoising score matching (EDM loss, Karras et al. 2022, eq. 2 and Table 1),
or tune one into a consistency model (``--loss ect --init``: easy consistency tuning, Geng et al. 2025).

    python -m recon.train --data head_ct --size 64 --steps 2000 --out checkpoints/head_ct_64
    python -m recon.train --data head_ct --loss ect --init checkpoints/head_ct_64 --out checkpoints/head_ct_64_cm

Writes ``OUT/model.safetensors`` (EMA weights) and ``OUT/card.json`` (kind, loss, data, config, steps, wall time, loss
curve, sha256, the command, the code version, the hardware and precision); ``OUT/train_state.pt`` holds what
``--resume`` needs to continue exactly where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import torch

from recon.data import brain_slices, fine_and_truth, head_ct_phantoms
from recon.data.brain_real import brain_real_slices
from recon.data.folder import (
    DEFAULT_WINDOW,
    MODALITIES,
    PATIENT_SOURCES,
    SMALL_POLICIES,
    DataFolderError,
    FolderOptions,
    Intensity,
    folder_images,
)
from recon.data.head_ct_hu import head_ct_hu_phantoms
from recon.data.head_ct_mixed import head_ct_mixed_phantoms
from recon.data.hospital import private_heads, public_labelled
from recon.models.checkpoints import build_model, load_card, save_checkpoint, verified_weights
from recon.models.checkpoints import resolve as resolve_checkpoint
from recon.models.precision import PRECISIONS, resolve
from recon.provenance import provenance
from recon.training import LOSSES, ECTLoss, EpochBatches, SupervisedLoss, TrainConfig, TrainState, distributed, train
from recon.training.privacy import ACCOUNTANTS, DPConfig, PoissonBatches, make_private

DATASETS = {"head_ct": head_ct_phantoms, "brain": brain_slices, "head_ct_public": public_labelled,
            "head_ct_private": private_heads, "head_ct_hu": head_ct_hu_phantoms, "brain_real": brain_real_slices,
            "head_ct_mixed": head_ct_mixed_phantoms}
# Loaders returning (images, labels), for class-conditional training, and the labels each holds.
LABELS_SEEN = {"head_ct_public": (0,), "head_ct_private": (0, 1)}
LABELLED = set(LABELS_SEEN)
# Network and batch per image size; 128 pixels adds a level (four resolutions, 16 x 16 at the bottom).
PRESETS = {"64": {"size": 64, "base": 32, "mults": [1, 2, 4], "blocks": 1, "batch": 32},
           "128": {"size": 128, "base": 32, "mults": [1, 2, 2, 4], "blocks": 1, "batch": 16}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m recon.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, metavar="NAME_OR_FOLDER",
                   help=f"a shipped data set ({', '.join(sorted(DATASETS))}) or a folder of DICOM, NIfTI, PNG or .npy "
                        "images (see the folder options; a data card is written beside the checkpoint)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="network and batch for an image size: " + "; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=8192, help="training images drawn once from the train split")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--loss", choices=sorted(LOSSES), default="edm",
                   help="edm: a diffusion prior; ect: consistency tuning of the --init prior into a consistency model")
    p.add_argument("--init", type=Path, default=None,
                   help="a checkpoint to start from (its network settings are used): a diffusion prior for --loss ect "
                        "(required), a supervised network for --loss supervised (fine-tuning at new --settings)")
    p.add_argument("--stage-every", type=int, default=400, help="ect: steps per stage of the shrinking gap t - r")
    p.add_argument("--settings", nargs="+", default=None,
                   help="supervised: the measurement settings of the training pairs, e.g. ct:16 or mri:4:equispaced")
    p.add_argument("--fine-factor", type=int, default=2,
                   help="supervised: training images are rendered this many times finer and measured off the grid")
    for field in dataclasses.fields(TrainConfig):
        p.add_argument("--" + field.name.replace("_", "-"), type=type(field.default), default=field.default)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--mults", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--classes", type=int, default=0,
                   help="class-conditional prior over this many labels (labelled data only; 0: unconditional)")
    p.add_argument("--label-dropout", type=float, default=0.1,
                   help="edm with labels: probability of training on the 'no label' entry (the unconditional prior)")
    add_privacy_arguments(p)
    add_folder_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network arithmetic; auto: bf16 where the hardware computes it natively, else fp32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    p.add_argument("--time-limit", type=float, default=None,
                   help="minutes: stop early (after a checkpoint); the card then records the --steps that reproduce it")
    preset = p.parse_known_args(argv)[0].preset
    if preset is not None:  # the preset's values become the defaults; flags given explicitly still win
        p.set_defaults(**PRESETS[preset])
    args = p.parse_args(argv)
    check_data_argument(args)
    return args


def add_privacy_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("differential privacy")
    g.add_argument("--dp-epsilon", type=float, default=None,
                   help="train with DP-SGD (opacus) to this epsilon: Poisson sampling at rate --batch / --n-train, "
                        "per-example clipping, calibrated Gaussian noise, fp32 and no loss curve (it would leak)")
    g.add_argument("--dp-delta", type=float, default=1e-5, help="DP-SGD: delta, at most 1/N")
    g.add_argument("--dp-clip", type=float, default=1.0, help="DP-SGD: per-example gradient norm bound")
    g.add_argument("--dp-accountant", choices=ACCOUNTANTS, default="prv", help="DP-SGD: accountant that calibrates")


def add_folder_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("a folder of images (--data PATH)")
    g.add_argument("--modality", choices=MODALITIES, default="auto",
                   help="ct: Hounsfield units through --window; mri: each volume over its --percentile intensity; "
                        "display: [0, 1] as read; auto: DICOM's Modality tag, else display")
    g.add_argument("--window", type=float, nargs=2, default=list(DEFAULT_WINDOW), metavar=("LOW", "HIGH"),
                   help="CT display window in HU mapped to [0, 1] (default: soft tissue)")
    g.add_argument("--percentile", type=float, default=99.5, help="MRI: the per-volume intensity mapped to 1")
    g.add_argument("--patient-pattern", default=r"[^_]+",
                   help="regex matching the patient in a file name where neither DICOM nor sub-folders say")
    g.add_argument("--patient-from", choices=PATIENT_SOURCES, default="auto",
                   help="auto: DICOM PatientID, else the first sub-folder, else the file name; folder or name: "
                        "ignore the DICOM tag (e.g. an anonymised folder where every file has the same ID)")
    g.add_argument("--val-fraction", type=float, default=0.1, help="share of patients held out for validation")
    g.add_argument("--test-fraction", type=float, default=0.1, help="share of patients held out for testing")
    g.add_argument("--skip-unreadable", action="store_true", help="leave out files that fail to read (listed)")
    g.add_argument("--small", choices=SMALL_POLICIES, default="error",
                   help="images smaller than --size: stop (error), leave out (skip) or interpolate up (upsample)")


def check_data_argument(args) -> None:
    if args.data in DATASETS:
        return
    if not Path(args.data).is_dir():
        raise SystemExit(f"--data {args.data!r} is neither a shipped data set ({', '.join(sorted(DATASETS))}) nor a "
                         "folder; pass one of those names or the path of a folder of images.")
    if args.loss == "supervised":
        raise SystemExit("--loss supervised renders its training pairs off the grid from the shipped data sets; use "
                         "--data head_ct or brain (a folder of images trains a prior: --loss edm).")


def folder_options(args) -> FolderOptions:
    return FolderOptions(args.modality, Intensity(tuple(args.window), args.percentile), args.patient_pattern,
                         args.val_fraction, args.test_fraction, args.skip_unreadable, args.small, args.patient_from)


def training_images(args):
    """The training images: a shipped set, or a folder's train split (its data card written to OUT)."""
    if args.loss == "supervised":  # fine renderings, measured off the grid inside the loss
        return fine_and_truth(args.data, args.n_train, args.size, "train", args.seed, factor=args.fine_factor)[1]
    if args.data in DATASETS:
        return DATASETS[args.data](args.n_train, args.size, "train", args.seed)
    try:
        images, card = folder_images(args.data, args.n_train, args.size, "train", args.seed, folder_options(args))
    except DataFolderError as error:
        raise SystemExit(f"--data {args.data}: {error}") from None
    args.data_card = {k: card[k] for k in ("fingerprint", "modality", "intensity", "counts")}
    if distributed.current().rank:
        return images
    (args.out / "data_card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"data: {card['counts']['train']['slices']} training slices of {card['counts']['train']['patients']} "
          f"patient(s); card in {args.out / 'data_card.json'}", file=sys.stderr)
    return images


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
    if args.init is not None:  # the network of the checkpoint we start from
        init = load_card(args.init)
        inherited = {k: init["config"][k] for k in ("image_size", "net", "denoiser") if k in init["config"]}
        return {**inherited, "data": args.data, "n_train": args.n_train, "split": "train", "seed": args.seed,
                "batch": args.batch, "init": str(args.init), "init_sha256": init["sha256"],
                **({"settings": list(args.settings)} if args.loss == "supervised" else {})}
    if args.loss == "supervised":
        return {"data": args.data, "image_size": args.size, "n_train": args.n_train, "split": "train", "seed": args.seed,
                "net": {"base": args.base, "mults": list(args.mults), "blocks": args.blocks, "emb_dim": 128,
                        "dropout": 0.0}, "settings": list(args.settings), "batch": args.batch}
    return {"data": args.data, "image_size": args.size, "n_train": args.n_train, "split": "train", "seed": args.seed,
            "net": {"base": args.base, "mults": list(args.mults), "blocks": args.blocks, "emb_dim": 128,
                    "dropout": 0.0, **({"classes": args.classes} if args.classes else {})},
            "denoiser": {"sigma_min": 0.002, "sigma_max": 40.0, "sigma_data": 0.5}, "batch": args.batch}


def write_card(state: TrainState, args, config: TrainConfig, loss, command: str, device) -> Path:
    model_cfg = model_config(args)
    card = {"kind": model_kind(args), "loss": loss.config(), "config": {**model_cfg, **dataclasses.asdict(config),
                                                              "precision": resolve(args.precision, device)},
            "parameters": sum(p.numel() for p in state.model.net.parameters()), "steps_done": state.step,
            "wall_time_s": round(state.elapsed, 1), **provenance(command, device, args.precision), "loss_curve": state.curve,
            "final_loss": state.curve[-1][1] if state.curve else None,
            **({"privacy": args.privacy} if getattr(args, "privacy", None) else {}),
            **({"data_card": args.data_card} if getattr(args, "data_card", None) else {})}
    return save_checkpoint(state.ema, card, args.out)


def model_kind(args) -> str:
    return {"ect": "consistency", "supervised": "supervised"}.get(args.loss, "edm")


def make_loss(args):
    if args.loss == "ect" and args.init is None:
        raise SystemExit("--loss ect tunes a diffusion prior into a consistency model: pass --init with its checkpoint "
                         "(e.g. --init checkpoints/head_ct_64).")
    if args.init is not None:
        wanted = {"ect": "edm", "edm": "edm", "supervised": "supervised"}.get(args.loss)
        kind = load_card(args.init).get("kind", "edm")
        if wanted is None or kind != wanted:
            raise SystemExit(f"--init {args.init} is a {kind!r} checkpoint; --loss {args.loss} starts from "
                             f"{'a ' + repr(wanted) + ' checkpoint' if wanted else 'a fresh network (drop --init)'}.")
        size = load_card(args.init)["config"]["image_size"]
        if size != args.size:
            raise SystemExit(f"--init {args.init} works on {size}x{size} images; pass --size {size} (got {args.size}).")
    if args.loss == "supervised":
        if not args.settings:
            raise SystemExit("--loss supervised trains on pairs from named settings: pass --settings (e.g. ct:16, or "
                             "ct:8 ct:16 ct:32 for a family).")
        return SupervisedLoss(args.settings, args.size, factor=args.fine_factor)
    if args.loss == "edm":
        return LOSSES["edm"](label_dropout=args.label_dropout)
    return ECTLoss(stage_every=args.stage_every) if args.loss == "ect" else LOSSES[args.loss]()


def start_unseen_labels(net, init_data: str) -> None:
    """Labels the ``--init`` checkpoint never trained on (a public set without haemorrhages has no label 1) start
    from its "no label" entry: the new class begins as the unconditional prior instead of a random embedding."""
    classes = getattr(net, "classes", 0)
    if classes and init_data in LABELS_SEEN:
        with torch.no_grad():
            for label in set(range(classes)) - set(LABELS_SEEN[init_data]):
                net.label_embed.weight[label] = net.label_embed.weight[classes]


def build(args, device):
    """The model to train: fresh, or the ``--init`` checkpoint's weights (checksum verified) in this run's kind."""
    model = build_model(model_kind(args), model_config(args))
    if args.init is not None:
        path = resolve_checkpoint(args.init)
        model.net.load_state_dict({k: v.float() for k, v in verified_weights(path, load_card(path)).items()})
        start_unseen_labels(model.net, load_card(path)["config"]["data"])
    model = model.to(device)
    model.net.to(memory_format=torch.channels_last)
    model.precision = args.precision
    return model


def check_labels(args, model) -> None:
    classes = getattr(model.net, "classes", 0)
    if (args.data in LABELLED) != bool(classes) and args.loss == "edm":
        raise SystemExit(f"--data {args.data} {'has' if args.data in LABELLED else 'has no'} labels but the network is "
                         f"{'class-conditional' if classes else 'unconditional'}: "
                         + ("pass --classes 2." if args.data in LABELLED else "drop --classes."))


def training_batches(args, images):
    n = (images[0] if isinstance(images, tuple) else images).shape[0]
    if n < args.batch and args.dp_epsilon is None:
        raise SystemExit(f"only {n} training image(s) in --data {args.data} (its train split), fewer than one batch: "
                         f"pass --batch {n} or less, or add images.")
    if isinstance(images, tuple):  # (images, labels)
        return EpochBatches.shuffled(images[0], args.batch, args.seed, labels=images[1])
    return EpochBatches.shuffled(images, args.batch, args.seed)


def dp_setup(args, state: TrainState, config: TrainConfig, images):
    """DP-SGD in place of plain training: Poisson batches, a private optimiser, fp32, no global clipping and no loss
    curve (a statistic of the private data). Returns the batches; ``args.privacy`` gets the card's record."""
    dp = DPConfig(args.dp_epsilon, args.dp_delta, args.dp_clip, args.dp_accountant)
    if args.loss != "edm":
        raise SystemExit("--dp-epsilon trains a diffusion prior privately: use it with --loss edm.")
    x, labels = images if isinstance(images, tuple) else (images, None)
    rate = dp.check_data(x.shape[0], args.batch)
    state.optimizer, args.dp_hooks, args.privacy = make_private(state.model.net, state.optimizer, dp, rate,
                                                                x.shape[0], config.steps)
    config.clip_grad, config.curve_every = None, 0
    settings = {k: args.privacy[k] for k in ("noise_multiplier", "sample_rate", "steps", "clip", "delta", "n_private")}
    return PoissonBatches(x, labels, rate, noise_generator=state.optimizer.generator, settings=settings)


def finish_private(args, state: TrainState, config: TrainConfig) -> None:
    """A DP run: remove the per-example hooks; a run stopped early writes no card (its noise was calibrated for the
    full run, so the card's epsilon would not be the one spent)."""
    if args.dp_epsilon is None:
        return
    args.dp_hooks.cleanup()
    if state.step < config.steps:
        raise SystemExit(f"stopped at step {state.step} of {config.steps}: resume with --resume (the noise was "
                         "calibrated for the full run, so a shorter one would spend less than its card states).")


def check_processes(args, shard: distributed.Shard) -> None:
    if shard.world > 1 and args.dp_epsilon is not None:
        raise SystemExit("--dp-epsilon under torchrun is not supported: opacus's per-example clipping and noise need "
                         "its own distributed optimiser; train a private prior in one process.")
    if args.batch % shard.world:
        raise SystemExit(f"--batch {args.batch} is the global batch and must split evenly over the {shard.world} "
                         f"processes; pass a multiple of {shard.world}.")


def fit(args, loss, config: TrainConfig, device) -> TrainState:
    """Build, (resume,) train; only rank 0 writes the checkpoints."""
    if args.dp_epsilon is not None:
        args.precision = "fp32"  # opacus's per-example gradients are tested in fp32 on CPU, not under bf16 autocast
    model = build(args, device)
    check_labels(args, model)
    images = training_images(args)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    state = TrainState.create(model, torch.optim.Adam(model.net.parameters(), lr=config.lr), generator)
    state.replica = distributed.replicate(model, device)
    batches = training_batches(args, images) if args.dp_epsilon is None else dp_setup(args, state, config, images)
    state_path = args.out / "train_state.pt"
    if args.resume and distributed.rank0_says(state_path.exists()):
        if not state_path.exists():
            raise SystemExit(f"rank {distributed.current().rank} cannot see {state_path}: --resume under torchrun on "
                             "several machines needs --out on a filesystem they all share.")
        state.load(state_path, batches)
    rank0 = distributed.current().rank == 0
    train(state, loss, batches, config, device=device, description=f"train {args.data}",
          checkpoint=lambda s: s.save(state_path, batches) if rank0 else None,
          time_limit=None if args.time_limit is None else 60 * args.time_limit)
    finish_private(args, state, config)
    return state


def main(argv=None) -> Path | None:
    """Train and write the checkpoint and its card; under ``torchrun`` only rank 0 writes (the others return None)."""
    args = parse_args(argv)
    loss = make_loss(args)
    given = sys.argv[1:] if argv is None else list(argv)
    shard, device = distributed.launch(torch.device(args.device))
    check_processes(args, shard)
    launcher = "python -m recon.train " if shard.world == 1 else f"torchrun --nproc_per_node {shard.world} -m " \
        "recon.train "
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    settings["clip_grad"] = settings["clip_grad"] or None  # --clip-grad 0 turns clipping off
    config = TrainConfig(**settings)
    state = fit(args, loss, config, device)
    distributed.finish()
    reproduce = without(given, {"--resume": 0, "--time-limit": 1})
    if state.step < config.steps:  # stopped by the time limit: the same run with fewer steps reproduces it exactly
        config.steps = state.step
        reproduce = without(reproduce, {"--steps": 1}) + ["--steps", str(state.step)]
    if shard.rank:
        return None
    path = write_card(state, args, config, loss, launcher + shlex.join(reproduce), device)
    print(json.dumps({k: json.loads((path / "card.json").read_text())[k]
                      for k in ("parameters", "wall_time_s", "hardware", "final_loss")}))
    return path


if __name__ == "__main__":
    main()
