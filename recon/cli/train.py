"""Train an unconditional score prior by denoising score matching (EDM loss, Karras et al. 2022, eq. 2 and Table 1),
or tune one into a consistency model (``--loss ect --init``: easy consistency tuning, Geng et al. 2025).

    python -m recon.train --data head_ct --size 64 --steps 2000 --out checkpoints/head_ct_64
    python -m recon.train --data head_ct --loss ect --init checkpoints/head_ct_64 --out checkpoints/head_ct_64_cm

Writes ``OUT/model.safetensors`` (EMA weights) and ``OUT/card.json`` (kind, loss, data, config, steps, wall time, loss
curve, sha256, the command, the code version, the hardware and precision); ``OUT/train_state.pt`` holds what
``--resume`` needs to continue exactly where it stopped, and the fingerprint of the data it trained on.

No run loses a previous one's files: an ``--out`` that holds a checkpoint is refused unless ``--overwrite`` (start
again) or ``--resume`` (continue) says what to do with it; every check (data, options, the state to resume) comes
before the first write; every file is written atomically; ``--resume`` refuses a damaged state or one saved on other
data. SIGINT or SIGTERM stops training after the current step with the state saved, prints the command that resumes
it, and exits with status 130 or 143.

This module owns the training program: its command line, parsed once into :class:`TrainOptions`, and the steps from
those options to a checkpoint (data, network, loss, DP-SGD, the card), with the guards above. The loop itself is
:mod:`recon.training`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
import signal
import sys
from pathlib import Path

import torch

from recon.cli.arguments import NETWORK_BYTES_PER_PIXEL, add_max_memory, check_memory
from recon.cli.errors import UsageError, run_program
from recon.data import fine_and_truth
from recon.data.families import FAMILIES, get_family
from recon.data.folder import (
    DEFAULT_WINDOW,
    MODALITIES,
    PATIENT_SOURCES,
    SMALL_POLICIES,
    DataFolderError,
    FolderOptions,
    Intensity,
    describe_skipped,
    folder_images,
)
from recon.data.intensity import MR_PERCENTILE
from recon.files import atomic_write_text, mark_output
from recon.models.checkpoints import CARD, WEIGHTS, build_model, load_card, load_weights, save_checkpoint
from recon.models.checkpoints import resolve as resolve_checkpoint
from recon.models.precision import PRECISIONS, resolve
from recon.provenance import provenance
from recon.training import LOSSES, ECTLoss, EpochBatches, SupervisedLoss, TrainConfig, TrainState, distributed, train
from recon.training.loop import StopSignals, read_state
from recon.training.privacy import ACCOUNTANTS, DPConfig, PoissonBatches, make_private

# Network and batch per image size; 128 pixels adds a level (four resolutions, 16 x 16 at the bottom).
PRESETS = {"64": {"size": 64, "base": 32, "mults": [1, 2, 4], "blocks": 1, "batch": 32},
           "128": {"size": 128, "base": 32, "mults": [1, 2, 2, 4], "blocks": 1, "batch": 16}}
PROG = "python -m recon.train"
STATE, DATA_CARD = "train_state.pt", "data_card.json"
RUN_FILES = (CARD, WEIGHTS, STATE, DATA_CARD)  # a previous run's files: --overwrite or --resume says what to do
DATA_CARD_SUMMARY = ("fingerprint", "modality", "intensity", "counts")  # what the checkpoint's card keeps of it


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """One training run as its command line states it (see ``--help``; the defaults live in the parser). Parsed once
    by :func:`parse_options` and never written to: what the run derives travels beside it (the run's own
    :class:`TrainConfig` from :func:`run_config`, DP-SGD's hooks, :class:`RunRecords`)."""

    data: str  # a family's name or a folder
    size: int
    n_train: int
    batch: int  # the global batch (all processes together); DP-SGD: the expected Poisson batch
    seed: int
    loss: str
    init: Path | None
    stage_every: int  # ect
    settings: tuple[str, ...] | None  # supervised
    fine_factor: int  # supervised
    label_dropout: float  # edm with labels
    config: TrainConfig  # the optimisation settings, ``--clip-grad 0`` as None
    preset: str | None  # its values are already the defaults of the fields below
    base: int
    mults: tuple[int, ...]
    blocks: int
    classes: int
    dp_epsilon: float | None  # None: not private
    dp_delta: float
    dp_clip: float
    dp_accountant: str
    modality: str  # the rest of the folder options: read only for --data FOLDER
    window: tuple[float, float]
    percentile: float
    patient_pattern: str
    patient_from: str
    val_fraction: float
    test_fraction: float
    skip_unreadable: bool
    small: str
    precision: str
    device: str
    out: Path
    resume: bool
    overwrite: bool
    time_limit: float | None  # minutes
    max_memory: float  # GiB: the estimate checked before the run starts

    @property
    def private(self) -> bool:
        return self.dp_epsilon is not None

    def network_precision(self) -> str:
        """``--precision``, except under DP-SGD: fp32 (opacus's per-example gradients are tested in fp32 on CPU, not
        under bf16 autocast)."""
        return "fp32" if self.private else self.precision

    def dp_config(self) -> DPConfig:
        return DPConfig(self.dp_epsilon, self.dp_delta, self.dp_clip, self.dp_accountant)

    def folder_options(self) -> FolderOptions:
        return FolderOptions(self.modality, Intensity(self.window, self.percentile), self.patient_pattern,
                             self.val_fraction, self.test_fraction, self.skip_unreadable, self.small, self.patient_from)


@dataclasses.dataclass(frozen=True)
class RunRecords:
    """What a run finds out on the way that its card records beside the options: a folder's data card (fingerprint,
    modality, intensity rule, counts) and DP-SGD's privacy record."""

    data_card: dict | None = None
    privacy: dict | None = None

    def card_entries(self) -> dict:
        return {**({"privacy": self.privacy} if self.privacy else {}),
                **({"data_card": self.data_card} if self.data_card else {})}


def parse_options(argv=None) -> TrainOptions:
    """The options of ``argv`` (default: ``sys.argv[1:]``); a ``--preset``'s values are defaults that flags given
    explicitly override."""
    p = argparse.ArgumentParser(prog="python -m recon.train", description=__doc__.splitlines()[0])
    add_data_arguments(p)
    add_network_arguments(p)
    add_privacy_arguments(p)
    add_folder_arguments(p)
    add_run_arguments(p)
    preset = p.parse_known_args(argv)[0].preset
    if preset is not None:
        p.set_defaults(**PRESETS[preset])
    args = vars(p.parse_args(argv))
    settings = {f.name: args.pop(f.name) for f in dataclasses.fields(TrainConfig)}
    settings["clip_grad"] = settings["clip_grad"] or None  # --clip-grad 0 turns clipping off
    try:
        config = TrainConfig(**settings)
    except ValueError as error:  # --steps 0, --lr 0, ...: the config's own checks name the option
        raise UsageError(str(error)) from None
    options = TrainOptions(**{**args, "config": config, "mults": tuple(args["mults"]),
                              "window": tuple(args["window"]),
                              "settings": None if args["settings"] is None else tuple(args["settings"])})
    check_data_argument(options)
    return options


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="NAME_OR_FOLDER",
                   help=f"a shipped data set ({', '.join(sorted(FAMILIES))}) or a folder of DICOM, NIfTI, PNG or .npy "
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


def add_network_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--mults", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--classes", type=int, default=0,
                   help="class-conditional prior over this many labels (labelled data only; 0: unconditional)")
    p.add_argument("--label-dropout", type=float, default=0.1,
                   help="edm with labels: probability of training on the 'no label' entry (the unconditional prior)")


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
    g.add_argument("--percentile", type=float, default=MR_PERCENTILE, help="MRI: the per-volume intensity mapped to 1")
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


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network arithmetic; auto: bf16 where the hardware computes it natively, else fp32")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, required=True)
    previous = p.add_mutually_exclusive_group()
    previous.add_argument("--resume", action="store_true", help="continue the run saved in OUT/train_state.pt")
    previous.add_argument("--overwrite", action="store_true",
                          help="replace the checkpoint in OUT (its files are removed when this run starts writing)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="minutes: stop early (after a checkpoint); the card then records the --steps that reproduce it")
    add_max_memory(p)


def check_data_argument(options: TrainOptions) -> None:
    if options.data in FAMILIES:
        return
    if not Path(options.data).is_dir():
        raise UsageError(f"--data {options.data!r} is neither a shipped data set ({', '.join(sorted(FAMILIES))}) nor "
                         "a folder; pass one of those names or the path of a folder of images.")
    if options.loss == "supervised":
        raise UsageError("--loss supervised renders its training pairs off the grid from the shipped data sets; use "
                         "--data head_ct or brain (a folder of images trains a prior: --loss edm).")


def labels_of(data: str) -> tuple | None:
    """The labels a family's images come with (None: unlabelled, or a folder)."""
    return FAMILIES[data].labels if data in FAMILIES else None


def training_images(options: TrainOptions) -> tuple:
    """``(images, data_card)``: a family's train split (data_card None), or a folder's with its data card (written to
    OUT when the run starts writing, :func:`start_writing`; the checkpoint's card keeps a summary of it)."""
    if options.loss == "supervised":  # fine renderings, measured off the grid inside the loss
        try:
            return fine_and_truth(options.data, options.n_train, options.size, "train", options.seed,
                                  factor=options.fine_factor)[1], None
        except ValueError as error:
            raise UsageError(f"--data {options.data} --loss supervised: {error}") from None
    if options.data in FAMILIES:
        try:
            return get_family(options.data).images(options.n_train, options.size, "train", options.seed), None
        except ValueError as error:  # the family's checks of --n-train, --size, --seed
            raise UsageError(f"--data {options.data}: {error}") from None
    try:
        return folder_images(options.data, options.n_train, options.size, "train", options.seed,
                             options.folder_options())
    except DataFolderError as error:
        raise UsageError(f"--data {options.data}: {error}") from None


def data_fingerprint(options: TrainOptions, data_card: dict | None) -> dict:
    """What the run trains on, as ``--resume`` checks it: the data and the options that draw its images, with a
    folder's content fingerprint (its data card's, over every slice's pixels), and their SHA-256."""
    drawn = {"data": options.data, "size": options.size, "n_train": options.n_train, "seed": options.seed,
             "loss": options.loss,
             **({"fine_factor": options.fine_factor, "settings": options.settings} if options.loss == "supervised"
                else {}),
             **({"folder": data_card["fingerprint"], "reading": folder_reading(options)} if data_card else {})}
    return {**drawn, "sha256": hashlib.sha256(json.dumps(drawn, sort_keys=True).encode()).hexdigest()}


def folder_reading(options: TrainOptions) -> dict:
    """The folder options that decide which slices are read, how they are scaled and split (all of them)."""
    reading = dataclasses.asdict(options.folder_options())
    return json.loads(json.dumps(reading, default=str))  # tuples as lists, as the state stores them


def describe_data(data: dict) -> str:
    """The recorded data options in words (older states record fewer of them)."""
    reading = data.get("reading")
    read_as = "" if reading is None else " read with " + ", ".join(f"{k}={v}" for k, v in reading.items())
    loss = f" --loss {data['loss']}" if "loss" in data else ""
    return (f"--data {data['data']} --size {data['size']} --n-train {data['n_train']} --seed {data['seed']}{loss}"
            f"{read_as} (data fingerprint {data['sha256'][:12]})")


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


def init_card(options: TrainOptions) -> dict:
    """The ``--init`` checkpoint's card (checked, :func:`recon.models.checkpoints.load_card`)."""
    try:
        return load_card(options.init)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f"--init {options.init}: {error}") from None


def model_config(options: TrainOptions) -> dict:
    """The card's network and data entries: the ``--init`` checkpoint's network, or a fresh one's."""
    o = options
    if o.init is not None:  # the network of the checkpoint we start from
        init = init_card(o)
        inherited = {k: init["config"][k] for k in ("image_size", "net", "denoiser") if k in init["config"]}
        return {**inherited, "data": o.data, "n_train": o.n_train, "split": "train", "seed": o.seed,
                "batch": o.batch, "init": str(o.init), "init_sha256": init["sha256"],
                **({"settings": list(o.settings)} if o.loss == "supervised" else {})}
    if o.loss == "supervised":
        return {"data": o.data, "image_size": o.size, "n_train": o.n_train, "split": "train", "seed": o.seed,
                "net": {"base": o.base, "mults": list(o.mults), "blocks": o.blocks, "emb_dim": 128, "dropout": 0.0},
                "settings": list(o.settings), "batch": o.batch}
    return {"data": o.data, "image_size": o.size, "n_train": o.n_train, "split": "train", "seed": o.seed,
            "net": {"base": o.base, "mults": list(o.mults), "blocks": o.blocks, "emb_dim": 128,
                    "dropout": 0.0, **({"classes": o.classes} if o.classes else {})},
            "denoiser": {"sigma_min": 0.002, "sigma_max": 40.0, "sigma_data": 0.5}, "batch": o.batch}


def write_card(state: TrainState, options: TrainOptions, config: TrainConfig, records: RunRecords, loss,
               command: str, device) -> Path:
    precision = options.network_precision()
    card = {"kind": model_kind(options), "loss": loss.config(),
            "config": {**model_config(options), **dataclasses.asdict(config), "precision": resolve(precision, device)},
            "parameters": sum(p.numel() for p in state.model.net.parameters()), "steps_done": state.step,
            "wall_time_s": round(state.elapsed, 1), **provenance(command, device, precision),
            "loss_curve": state.curve, "final_loss": state.curve[-1][1] if state.curve else None,
            **records.card_entries()}
    return save_checkpoint(state.ema, card, options.out)


def model_kind(options: TrainOptions) -> str:
    return {"ect": "consistency", "supervised": "supervised"}.get(options.loss, "edm")


def check_init(options: TrainOptions) -> None:
    """The ``--init`` checkpoint must be of the kind ``--loss`` starts from, at ``--size``."""
    if options.loss == "ect" and options.init is None:
        raise UsageError("--loss ect tunes a diffusion prior into a consistency model: pass --init with its checkpoint "
                         "(e.g. --init checkpoints/head_ct_64).")
    if options.init is None:
        return
    wanted = {"ect": "edm", "edm": "edm", "supervised": "supervised"}.get(options.loss)
    card = init_card(options)
    kind = card.get("kind", "edm")
    if wanted is None or kind != wanted:
        raise UsageError(f"--init {options.init} is a {kind!r} checkpoint; --loss {options.loss} starts from "
                         f"{'a ' + repr(wanted) + ' checkpoint' if wanted else 'a fresh network (drop --init)'}.")
    size = card.get("config", {}).get("image_size")
    if size is None:
        raise UsageError(f"--init {options.init}: its card.json has no config.image_size; pass a checkpoint folder "
                         "that `python -m recon.train` wrote.")
    if size != options.size:
        raise UsageError(f"--init {options.init} works on {size}x{size} images; pass --size {size} "
                         f"(got {options.size}).")


def make_loss(options: TrainOptions):
    check_init(options)
    if options.loss == "supervised":
        if not options.settings:
            raise UsageError("--loss supervised trains on pairs from named settings: pass --settings (e.g. ct:16, or "
                             "ct:8 ct:16 ct:32 for a family).")
        return SupervisedLoss(list(options.settings), options.size, factor=options.fine_factor)
    if options.loss == "edm":
        return LOSSES["edm"](label_dropout=options.label_dropout)
    return ECTLoss(stage_every=options.stage_every) if options.loss == "ect" else LOSSES[options.loss]()


def start_unseen_labels(net, init_data: str) -> None:
    """Labels the ``--init`` checkpoint never trained on (a public set without haemorrhages has no label 1) start
    from its "no label" entry: the new class begins as the unconditional prior instead of a random embedding."""
    classes, seen = getattr(net, "classes", 0), labels_of(init_data)
    if classes and seen is not None:
        with torch.no_grad():
            for label in set(range(classes)) - set(seen):
                net.label_embed.weight[label] = net.label_embed.weight[classes]


def build(options: TrainOptions, device):
    """The model to train: fresh, or the ``--init`` checkpoint's weights (checksums and shapes verified) in this run's
    kind."""
    model = build_model(model_kind(options), model_config(options))
    if options.init is not None:
        path, card = resolve_checkpoint(options.init), init_card(options)
        try:
            load_weights(model.net, path, card)
        except ValueError as error:
            raise UsageError(f"--init {options.init}: {error}") from None
        start_unseen_labels(model.net, card["config"]["data"])
    model = model.to(device)
    model.net.to(memory_format=torch.channels_last)
    model.precision = options.network_precision()
    return model


def check_labels(options: TrainOptions, model) -> None:
    classes, labelled = getattr(model.net, "classes", 0), labels_of(options.data) is not None
    if labelled != bool(classes) and options.loss == "edm":
        raise UsageError(f"--data {options.data} {'has' if labelled else 'has no'} labels but the network is "
                         f"{'class-conditional' if classes else 'unconditional'}: "
                         + ("pass --classes 2." if labelled else "drop --classes."))


def training_batches(options: TrainOptions, images):
    n = (images[0] if isinstance(images, tuple) else images).shape[0]
    if n < options.batch:
        raise UsageError(f"only {n} training image(s) in --data {options.data} (its train split), fewer than one "
                         f"batch: pass --batch {n} or less, or add images.")
    if isinstance(images, tuple):  # (images, labels)
        return EpochBatches.shuffled(images[0], options.batch, options.seed, labels=images[1])
    return EpochBatches.shuffled(images, options.batch, options.seed)


def run_config(options: TrainOptions) -> TrainConfig:
    """This run's copy of the optimisation settings: DP-SGD clips per example instead of globally and keeps no loss
    curve (a statistic of the private data)."""
    return dataclasses.replace(options.config, **({"clip_grad": None, "curve_every": 0} if options.private else {}))


def dp_setup(options: TrainOptions, state: TrainState, config: TrainConfig, images) -> tuple:
    """DP-SGD in place of plain training: Poisson batches and a private optimiser (put into ``state``). Returns
    ``(batches, hooks, privacy)``: opacus's per-example hooks and the card's privacy record."""
    dp = options.dp_config()
    if options.loss != "edm":
        raise UsageError("--dp-epsilon trains a diffusion prior privately: use it with --loss edm.")
    x, labels = images if isinstance(images, tuple) else (images, None)
    rate = dp.check_data(x.shape[0], options.batch)
    state.optimizer, hooks, privacy = make_private(state.model.net, state.optimizer, dp, rate, x.shape[0],
                                                   config.steps)
    settings = {k: privacy[k] for k in ("noise_multiplier", "sample_rate", "steps", "clip", "delta", "n_private")}
    return PoissonBatches(x, labels, rate, noise_generator=state.optimizer.generator, settings=settings), hooks, privacy


def finish_private(hooks, state: TrainState, config: TrainConfig) -> None:
    """A DP run (``hooks`` not None): remove the per-example hooks; a run stopped early writes no card (its noise was
    calibrated for the full run, so the card's epsilon would not be the one spent)."""
    if hooks is None:
        return
    hooks.cleanup()
    if state.step < config.steps:
        raise UsageError(f"stopped at step {state.step} of {config.steps}: resume with --resume (the noise was "
                         "calibrated for the full run, so a shorter one would spend less than its card states).")


def check_processes(options: TrainOptions, shard: distributed.Shard) -> None:
    if shard.world > 1 and options.private:
        raise UsageError("--dp-epsilon under torchrun is not supported: opacus's per-example clipping and noise need "
                         "its own distributed optimiser; train a private prior in one process.")
    if options.batch % shard.world:
        raise UsageError(f"--batch {options.batch} is the global batch and must split evenly over the {shard.world} "
                         f"processes; pass a multiple of {shard.world}.")


def check_out(options: TrainOptions) -> None:
    """Before anything is written: an ``--out`` holding a previous run's files is taken only with ``--overwrite`` or
    ``--resume``, and ``--resume`` needs a state to continue. Rank 0's view decides (``--out`` is shared)."""
    if options.out.exists() and not options.out.is_dir():
        raise UsageError(f"--out {options.out} is a file; pass a folder (new, or one a run wrote).")
    check_out_is_no_input(options)
    found = [name for name in RUN_FILES if (options.out / name).exists()]
    if options.resume:
        if not distributed.rank0_says((options.out / STATE).exists()):
            raise UsageError(f"--resume: there is no {options.out / STATE} to continue (no run saved a state in "
                             "--out); drop --resume to start a new run.")
        if not (options.out / STATE).exists():
            raise UsageError(f"rank {distributed.current().rank} cannot see {options.out / STATE}: --resume under "
                             "torchrun on several machines needs --out on a filesystem they all share.")
    elif distributed.rank0_says(bool(found)) and not options.overwrite:
        raise UsageError(f"--out {options.out} already holds a previous run's files ({', '.join(found)}); pass "
                         "--overwrite to replace them, --resume to continue that run, or choose another --out.")


def check_resources(options: TrainOptions) -> None:
    """Before any work: the training images held in memory (rendered finer for a supervised run) and the network's
    working memory for one batch, against ``--max-memory``."""
    side = options.size * (options.fine_factor if options.loss == "supervised" else 1)
    check_memory({"images": 4.0 * options.n_train * side**2,
                  "network": float(NETWORK_BYTES_PER_PIXEL * options.batch * options.size**2)}, options.max_memory,
                 "lower --n-train, --batch or --size")


def check_out_is_no_input(options: TrainOptions) -> None:
    """``--out`` may be neither the ``--init`` checkpoint nor the ``--data`` folder or inside it: the run would
    replace its own starting point, or mark its data folder as output (which the reader then skips)."""
    out = options.out.resolve()
    if options.init is not None and Path(options.init).resolve() == out:
        raise UsageError(f"--out {options.out} is the --init checkpoint; pass another --out (the run starts from "
                         "--init and must not replace it).")
    if options.data not in FAMILIES and Path(options.data).exists():
        data = Path(options.data).resolve()
        if out == data or data in out.parents:
            raise UsageError(f"--out {options.out} overlaps the --data folder {options.data}; pass an --out outside "
                             "it (the output folder is marked, and the folder reader skips marked folders).")


def resume(options: TrainOptions, state: TrainState, batches) -> None:
    """With ``--resume``, continue from OUT's state: a whole one (else the error names the file), saved on the data
    this run trains on (``state.data``, else the error names both) by a run with this network and optimiser."""
    if not options.resume:
        return
    path, data = options.out / STATE, state.data
    try:
        saved = read_state(path)
    except ValueError as error:
        raise UsageError(f"--resume: {error}. Restore it from a copy, {start_anew(options)}") from None
    check_same_data(options, path, saved.get("data"), data)
    try:
        state.load_state_dict(saved, batches, path)
    except ValueError as error:
        raise UsageError(f"--resume: {error}; pass the options of the run that saved it, "
                         f"{start_anew(options)}") from None
    state.data = data


def start_anew(options: TrainOptions) -> str:
    return f"or drop --resume and pass --overwrite to start a new run in {options.out}."


def check_same_data(options: TrainOptions, path: Path, saved: dict | None, data: dict) -> None:
    if saved is None:  # a state saved before states recorded their data
        print(f"{PROG}: {path} does not record its data; resuming on {describe_data(data)} unchecked.",
              file=sys.stderr)
    elif saved["sha256"] != data["sha256"]:
        changed = " (the folder's images changed)" if saved["data"] == data["data"] else ""
        raise UsageError(f"--resume: {path} continues a run on {describe_data(saved)}, but this run trains on "
                         f"{describe_data(data)}{changed}; pass the data options of that run to continue it, "
                         f"{start_anew(options)}")


@dataclasses.dataclass
class Prepared:
    """A run ready to train, every check passed and nothing written yet: the state (resumed where asked), its
    batches, DP-SGD's per-example hooks (None: not private), the card's records and a folder's full data card."""

    state: TrainState
    batches: object
    hooks: object
    records: RunRecords
    data_card: dict | None


def prepare(options: TrainOptions, loss, config: TrainConfig, device) -> Prepared:
    """Build the model, read the data, (resume,) and make the batches: every check before the first write."""
    model = build(options, device)
    check_labels(options, model)
    images, data_card = training_images(options)
    generator = torch.Generator(device=device).manual_seed(options.seed)
    state = TrainState.create(model, torch.optim.Adam(model.net.parameters(), lr=config.lr), generator)
    state.replica = distributed.replicate(model, device)
    state.data = data_fingerprint(options, data_card)
    hooks = privacy = None
    if options.private:
        batches, hooks, privacy = dp_setup(options, state, config, images)
    else:
        batches = training_batches(options, images)
    resume(options, state, batches)
    summary = None if data_card is None else {k: data_card[k] for k in DATA_CARD_SUMMARY}
    return Prepared(state, batches, hooks, RunRecords(summary, privacy), data_card)


def start_writing(options: TrainOptions, prepared: Prepared) -> None:
    """The run's first writes (rank 0): the output marker; with ``--overwrite``, the previous run's files go (so the
    folder never mixes two runs); a folder's data card."""
    if distributed.current().rank:
        return
    mark_output(options.out)
    if options.overwrite:
        for name in RUN_FILES:
            (options.out / name).unlink(missing_ok=True)
    card = prepared.data_card
    if card is not None:
        atomic_write_text(options.out / DATA_CARD, json.dumps(card, indent=1) + "\n")
        print(f"data: {card['counts']['train']['slices']} training slices of {card['counts']['train']['patients']} "
              f"patient(s); card in {options.out / DATA_CARD}", file=sys.stderr)
        for line in describe_skipped(card["skipped"]):
            print(line, file=sys.stderr)


def fit(options: TrainOptions, prepared: Prepared, loss, config: TrainConfig, device) -> int | None:
    """Train from the prepared state; only rank 0 writes the states. Returns the signal that stopped it, if one did
    (the state is then saved at the step it stopped after)."""
    state, batches = prepared.state, prepared.batches
    rank0 = distributed.current().rank == 0
    with StopSignals() as signals:
        start_writing(options, prepared)
        train(state, loss, batches, config, device=device, description=f"train {options.data}",
              checkpoint=lambda s: s.save(options.out / STATE, batches) if rank0 else None,
              time_limit=None if options.time_limit is None else 60 * options.time_limit, stop=signals.stop)
    return signals.received


def launcher(world: int) -> str:
    return "python -m recon.train " if world == 1 else f"torchrun --nproc_per_node {world} -m recon.train "


def reproducing_command(given: list[str], world: int, stopped_at: int | None) -> str:
    """The command that reproduces this run: without ``--resume``, ``--overwrite`` and ``--time-limit``, and a run
    stopped by the time limit at ``stopped_at`` steps becomes the same run with that many steps (it reproduces it
    exactly)."""
    reproduce = without(given, {"--resume": 0, "--overwrite": 0, "--time-limit": 1})
    if stopped_at is not None:
        reproduce = without(reproduce, {"--steps": 1}) + ["--steps", str(stopped_at)]
    return launcher(world) + shlex.join(reproduce)


def stop_interrupted(options: TrainOptions, given: list[str], state: TrainState, signum: int, world: int):
    """After a signal stopped training (the state saved): say how to resume, and exit as the signal would (128 + its
    number: 130 for SIGINT, 143 for SIGTERM), without a traceback."""
    if distributed.current().rank == 0:
        command = launcher(world) + shlex.join(without(given, {"--resume": 0, "--overwrite": 0}) + ["--resume"])
        print(f"{PROG}: stopped by {signal.Signals(signum).name} after step {state.step} of {options.config.steps}; "
              f"the state is saved in {options.out / STATE}. Resume with: {command}", file=sys.stderr)
    raise SystemExit(128 + signum)


def run(argv=None) -> Path | None:
    """Train and write the checkpoint and its card; under ``torchrun`` only rank 0 writes (the others return None).
    An expected error is a :class:`UsageError`; one about the options, the data or the state to resume comes before
    anything is written to ``--out``. A signal during training ends it as :func:`stop_interrupted` says."""
    options = parse_options(argv)
    check_resources(options)
    loss = make_loss(options)
    given = sys.argv[1:] if argv is None else list(argv)
    shard, device = distributed.launch(torch.device(options.device))
    check_processes(options, shard)
    check_out(options)
    torch.manual_seed(options.seed)
    config = run_config(options)
    prepared = prepare(options, loss, config, device)
    stopped_by = fit(options, prepared, loss, config, device)
    distributed.finish()
    state = prepared.state
    if stopped_by is not None:
        stop_interrupted(options, given, state, stopped_by, shard.world)
    finish_private(prepared.hooks, state, config)
    stopped_at = state.step if state.step < config.steps else None
    if stopped_at is not None:  # stopped by the time limit
        config.steps = stopped_at
    if shard.rank:
        return None
    command = reproducing_command(given, shard.world, stopped_at)
    path = write_card(state, options, config, prepared.records, loss, command, device)
    print(json.dumps({k: json.loads((path / CARD).read_text())[k]
                      for k in ("parameters", "wall_time_s", "hardware", "final_loss")}))
    return path


def main(argv=None) -> Path | None:
    """The program: :func:`run`, with an expected error printed as ``python -m recon.train: error: ...`` and exit
    status 2 (:func:`recon.cli.errors.run_program`), and an interruption that leaves no state to resume (before
    training began, or a second Ctrl-C) as one line and exit status 130. Returns the checkpoint's folder (None on
    ranks other than 0)."""
    written = []
    run_program(PROG, lambda args: written.append(run(args)), argv,
                interrupted="interrupted before a state could be saved; the files in --out are whole (each is written "
                            "atomically) and as the last save left them.")
    return written[0] if written else None


if __name__ == "__main__":
    main()
