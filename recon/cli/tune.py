"""Tune a method's free parameters on validation images by the book's protocol (:mod:`recon.tuning`),
from the command line, as one worker of a study that several processes or machines may share.

    python -m recon.tune --prior head_ct --data head_ct --setting ct:16 --method proximal --n-trials 20 \\
        --storage study.db --result tuned.json            # run this in two terminals: two workers, one study

``--data`` names a shipped data set or a folder (its validation split, read as the prior's data card says, and
checked against the validation patients the card lists). The
validation images are rendered at twice the prior's grid and measured off it where the data allow. ``--storage`` is
a SQLite file (or any database URL of optuna's relational storage); workers on one study stop together at
``--n-trials``. ``--result`` gets the study's best values, which ``python -m recon.reconstruct --tuned`` uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from recon.cli.arguments import key_values
from recon.cli.images import scan_options
from recon.data import fine_and_truth
from recon.data.folder import DataFolderError, FolderOptions, Intensity, folder_images
from recon.methods import METHODS
from recon.models.checkpoints import load_card, resolve
from recon.operators.settings import make_operator
from recon.reconstruction import load_prior
from recon.tuning import tune_method


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
    storage: str | None
    study: str | None
    worker: int
    seed: int
    device: str
    result: Path | None


def parse_options(argv=None) -> TuneOptions:
    p = argparse.ArgumentParser(prog="python -m recon.tune", description=__doc__.splitlines()[0])
    p.add_argument("--prior", required=True, help="a shipped prior's name or a checkpoint folder")
    p.add_argument("--data", required=True, help="head_ct, brain, or a folder of images (its validation split)")
    p.add_argument("--setting", required=True, help="e.g. ct:16 or mri:4:random (recon.operators.settings)")
    p.add_argument("--method", choices=sorted(METHODS), default="proximal")
    p.add_argument("--fixed", action="append", default=[], metavar="KEY=VALUE", help="an option held fixed")
    p.add_argument("--n-val", type=int, default=8, help="validation images")
    p.add_argument("--n-trials", type=int, default=20, help="trials of the whole study (all workers together)")
    p.add_argument("--storage", default=None, help="SQLite file or database URL shared by the workers")
    p.add_argument("--study", default=None, help="the study's name (default: from method, setting and prior)")
    p.add_argument("--worker", type=int, default=0, help="this worker's number (offsets its sampler's seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--result", type=Path, default=None, help="write the best values here (JSON)")
    args = p.parse_args(argv)
    return TuneOptions(**{**vars(args), "fixed": tuple(args.fixed)})


def folder_options(prior_path: Path, card: dict, seed: int) -> tuple[FolderOptions, int, dict | None]:
    """How the prior's training read its folder (``data_card.json`` beside it: the same rules and seed give the same
    split), else the defaults with the card's modality and intensity."""
    data_card = prior_path / "data_card.json"
    if data_card.exists():
        full = json.loads(data_card.read_text())
        options = dict(full["options"])
        options["intensity"] = Intensity(tuple(options["intensity"]["window"]), options["intensity"]["percentile"])
        return FolderOptions(**options), full["seed"], full
    return scan_options(card), seed, None


def validation_images(options: TuneOptions, prior_path: Path, card: dict, size: int):
    """``(truth, fine)``: the validation images and their renderings at twice the grid (fine None: on the grid). A
    folder's validation patients must be those the prior's data card lists (never a training or test patient)."""
    if options.data in ("head_ct", "brain"):
        return fine_and_truth(options.data, options.n_val, size, "val", options.seed, factor=2)
    if not Path(options.data).is_dir():
        raise SystemExit(f"--data {options.data!r} is neither head_ct, brain nor a folder.")
    folder, seed, full = folder_options(prior_path, card, options.seed)
    try:
        truth, found = folder_images(options.data, options.n_val, size, "val", seed, folder)
        if full is not None and found["patients_sha256_12"] != full["patients_sha256_12"]:
            raise SystemExit(f"the patients of {options.data} and their splits differ from those the prior's data card "
                             "lists (was the folder changed?); tune on the folder the prior was trained on.")
        try:
            fine = folder_images(options.data, options.n_val, 2 * size, "val", seed, folder)[0]
            return torch.nn.functional.avg_pool2d(fine, 2), fine
        except DataFolderError:  # too small for a rendering at twice the grid: measured on the grid
            return truth, None
    except DataFolderError as error:
        raise SystemExit(f"--data {options.data}: {error}") from None


def main(argv=None) -> dict:
    options = parse_options(argv)
    path = resolve(options.prior)
    card = load_card(path)
    size = card["config"]["image_size"]
    truth, fine = validation_images(options, path, card, size)
    fixed = key_values(list(options.fixed), "--fixed", "steps=100")
    prior = load_prior(str(path), options.device) if METHODS[options.method].needs_prior else None
    name = options.study or f"{options.method}|{options.setting}|{card['sha256'][:12]}|{fixed}"
    tuned = tune_method(options.method, make_operator(options.setting, size), truth, prior, fine=fine, fixed=fixed,
                        n_trials=options.n_trials, name=name, seed=options.seed, storage=options.storage,
                        device=options.device, worker=options.worker)
    result = {"method": tuned.method, "fixed": tuned.fixed, "best": tuned.best, "value": tuned.value,
              "at_bound": tuned.at_bound, "trials": len(tuned.trials), "study": name, "setting": options.setting,
              "prior": options.prior, "data": options.data, "n_val": int(truth.shape[0]), "off_grid": fine is not None}
    if options.result is not None:
        options.result.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("best", "value", "trials")}))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
