"""Tune a method's free parameters on validation images by the book's protocol (:mod:`recon.tuning`),
from the command line, as one worker of a study that several processes or machines may share.

    python -m recon.tune --prior head_ct --data head_ct --setting ct:16 --method proximal --n-trials 20 \\
        --storage study.db --worker 0 --result tuned.json  # and --worker 1 --result tuned_1.json in a second
                                                            # terminal: two workers, one study

``--data`` names a shipped data set or a folder (its validation split, read as the prior's data card says, and
checked against the validation patients the card lists). The
validation images are rendered at twice the prior's grid and measured off it where the data allow. ``--storage`` is
a SQLite file (or any database URL of optuna's relational storage); workers on one study stop together at
``--n-trials``. ``--result`` gets the study's best values (written atomically), which ``python -m recon.reconstruct --tuned`` uses.
Before any work the program refuses a storage that cannot work, a setting with more views than the prior's grid can
use, and an estimated memory over ``--max-memory``; each such error is one line (exit status 2 from
``python -m recon.tune``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from recon.cli.arguments import (
    CHECKPOINT_ERRORS,
    DEFAULT_MAX_MEMORY_GIB,
    NETWORK_BYTES_PER_PIXEL,
    add_max_memory,
    check_memory,
    check_views,
    key_values,
    prior_card,
    prior_network,
)
from recon.cli.errors import UsageError, run_program
from recon.cli.images import scan_options
from recon.data import fine_and_truth
from recon.data.families import FAMILIES
from recon.data.folder import DataFolderError, FolderOptions, Intensity, describe_skipped, folder_images
from recon.files import atomic_write_text
from recon.methods import METHODS
from recon.operators.settings import make_operator, operator_bytes, parse_setting
from recon.tuning import storage_for, tune_method

PROG = "python -m recon.tune"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TuneOptions:
    """One tuning worker as its command line states it (see ``--help``; the defaults live in the parser), parsed once
    by :func:`parse_options` and never written to."""

    prior: str
    data: str  # head_ct, brain, or a folder
    setting: str
    method: str
    fixed: tuple[str, ...]  # KEY=VALUE pairs
    n_val: int
    n_trials: int
    search: str
    storage: str | None
    study: str | None
    worker: int
    seed: int
    device: str
    result: Path | None
    max_memory: float = DEFAULT_MAX_MEMORY_GIB


def check_result(result: Path) -> None:
    """Before any trial: ``--result`` is a new file (a study's best values never replace another file) in a folder
    that exists."""
    if result.is_dir():
        raise UsageError(f"--result {result} is a folder; pass a file name for the JSON result.")
    if result.exists():
        raise UsageError(f"--result {result} exists already; pass a new file name (a result never replaces a file).")
    if not result.parent.is_dir():
        raise UsageError(f"--result {result}: the folder {result.parent} does not exist; create it or pass a file "
                         "in an existing folder.")


def parse_options(argv=None) -> TuneOptions:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--prior", required=True, help="a shipped prior's name or a checkpoint folder")
    p.add_argument("--data", required=True, help="head_ct, brain, or a folder of images (its validation split)")
    p.add_argument("--setting", required=True, help="e.g. ct:16 or mri:4:random (recon.operators.settings)")
    p.add_argument("--method", choices=sorted(METHODS), default="proximal")
    p.add_argument("--fixed", action="append", default=[], metavar="KEY=VALUE", help="an option held fixed")
    p.add_argument("--n-val", type=int, default=8, help="validation images")
    p.add_argument("--n-trials", type=int, default=20, help="trials of the whole study (all workers together)")
    p.add_argument("--search", choices=("tpe", "grid", "protocol"), default="tpe",
                   help="TPE with --n-trials trials (default); grid: 13 points for one free parameter, 7 x 7 for two "
                        "(--n-trials is then the grid's size); protocol: the grid up to two, else TPE with at least 30")
    p.add_argument("--storage", default=None, help="SQLite file or database URL shared by the workers")
    p.add_argument("--study", default=None, help="the study's name (default: from method, setting and prior)")
    p.add_argument("--worker", type=int, default=0, help="this worker's number (offsets its sampler's seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--result", type=Path, default=None, help="write the best values here (JSON)")
    add_max_memory(p)
    args = p.parse_args(argv)
    for flag, value in (("--n-val", args.n_val), ("--n-trials", args.n_trials)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1; got {value}.")
    if args.result is not None:
        check_result(args.result)
    return TuneOptions(**{**vars(args), "fixed": tuple(args.fixed)})


def folder_options(prior_path: Path, card: dict, seed: int) -> tuple[FolderOptions, int, dict | None]:
    """How the prior's training read its folder (``data_card.json`` beside it: the same rules and seed give the same
    split), else the defaults with the card's modality and intensity."""
    data_card = prior_path / "data_card.json"
    if data_card.exists():
        try:
            full = json.loads(data_card.read_text())
            options = dict(full["options"])
            options["intensity"] = Intensity(tuple(options["intensity"]["window"]), options["intensity"]["percentile"])
            return FolderOptions(**options), full["seed"], full
        except CHECKPOINT_ERRORS as error:
            raise UsageError(f"--prior {prior_path}: its data_card.json cannot be read ({type(error).__name__}: "
                             f"{error}); restore it or retrain the prior.") from None
    return scan_options(card), seed, None


def validation_images(options: TuneOptions, prior_path: Path, card: dict, size: int):
    """``(truth, fine)``: the validation images and their renderings at twice the grid (fine None: on the grid). A
    folder's validation patients must be those the prior's data card lists (never a training or test patient)."""
    if options.data in FAMILIES:
        try:
            return fine_and_truth(options.data, options.n_val, size, "val", options.seed, factor=2)
        except ValueError as error:  # a family without a finer rendering, or a request it refuses
            raise UsageError(f"--data {options.data}: {error}") from None
    if not Path(options.data).is_dir():
        raise UsageError(f"--data {options.data!r} is neither a data family ({', '.join(sorted(FAMILIES))}) nor a "
                         "folder.")
    folder, seed, full = folder_options(prior_path, card, options.seed)
    try:
        truth, found = folder_images(options.data, options.n_val, size, "val", seed, folder)
        for line in describe_skipped(found["skipped"]):
            print(line, file=sys.stderr)
        if full is not None and found["patients_sha256_12"] != full["patients_sha256_12"]:
            raise UsageError(f"--data {options.data}: the patients of {options.data} and their splits differ from those "
                             "the prior's data card lists (was the folder changed?); tune on the folder the prior was "
                             "trained on.")
        try:
            fine = folder_images(options.data, options.n_val, 2 * size, "val", seed, folder)[0]
            return torch.nn.functional.avg_pool2d(fine, 2), fine
        except DataFolderError:  # too small for a rendering at twice the grid: measured on the grid
            return truth, None
    except DataFolderError as error:
        raise UsageError(f"--data {options.data}: {error}") from None


def the_operator(options: TuneOptions, size: int):
    """The operator ``--setting`` names at ``size`` pixels, refused before it is built when it has more views than
    the grid can use or needs more memory than ``--max-memory`` with ``--n-val`` images."""
    try:
        kind, parts = parse_setting(options.setting)
        if kind == "ct":
            check_views(parts["n_views"], size, f"--setting {options.setting} ({parts['n_views']} views)")
        check_memory({"operator": operator_bytes(options.setting, size),
                      "network": options.n_val * NETWORK_BYTES_PER_PIXEL * size**2}, options.max_memory,
                     "lower the views of --setting or --n-val")
        return make_operator(options.setting, size)
    except ValueError as error:
        raise UsageError(f"--setting: {error}") from None


def the_storage(options: TuneOptions) -> None:
    """Check ``--storage`` before any work (a missing driver, an unknown scheme, a missing folder, a file that is
    not a database): the library's refusal as the option's error."""
    if options.storage is None:
        return
    try:
        storage_for(options.storage)
    except ValueError as error:
        raise UsageError(f"--storage: {error}") from None


def main(argv=None) -> dict:
    """Run one tuning worker (see the module's docstring); returns its result. Expected errors are
    :class:`~recon.cli.errors.UsageError` (``python -m recon.tune`` prints them as one line)."""
    options = parse_options(argv)
    the_storage(options)
    path, card, size = prior_card(options.prior)
    fixed = key_values(list(options.fixed), "--fixed", "steps=100")
    operator = the_operator(options, size)
    prior = prior_network(options.prior, path, options.device) if METHODS[options.method].needs_prior else None
    truth, fine = validation_images(options, path, card, size)
    name = options.study or f"{options.method}|{options.setting}|{card.get('sha256', '')[:12]}|{fixed}"
    try:
        tuned = tune_method(options.method, operator, truth, prior, fine=fine, fixed=fixed, n_trials=options.n_trials,
                            search=options.search, name=name, seed=options.seed, storage=options.storage, device=options.device,
                            worker=options.worker)
    except ValueError as error:
        raise UsageError(f"--method {options.method} with --fixed {fixed}: {str(error).splitlines()[0]}") from None
    result = {"method": tuned.method, "fixed": tuned.fixed, "best": tuned.best, "value": tuned.value,
              "at_bound": tuned.at_bound, "trials": len(tuned.trials), "search": tuned.search, "study": name, "setting": options.setting,
              "prior": options.prior, "data": options.data, "n_val": int(truth.shape[0]), "off_grid": fine is not None}
    if options.result is not None:
        atomic_write_text(options.result, json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("best", "value", "trials")}))
    return result


if __name__ == "__main__":
    run_program(PROG, main, sys.argv[1:])
