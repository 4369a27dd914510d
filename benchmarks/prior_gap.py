"""Each shipped prior's generalisation gap: denoising PSNR on its training draws against held-out images (not a test).

    python benchmarks/prior_gap.py [--n 32] [--priors brain brain_synth] [--out results/prior_gap.json] [--write-cards]

For every shipped EDM prior (or those named), ``D(x + sigma z, sigma)`` against ``x`` at sigma in {0.05, 0.1, 0.2,
0.4} (:func:`recon.models.denoiser.denoising_psnr`, the same noise draws for every prior) on ``n`` images of:

- ``train``: the first images of the prior's own training pool (its card's family, split and seed);
- ``held-out``: draws of the same family it never saw (the family's test split, else its validation split);
- for a brain prior, ``MNI152 test slabs`` (the ``brain`` family's test split: anatomy levels no brain prior
  trained on axially) and ``real MR`` (the real-scan study's MR slices, people no prior saw); for a CT prior,
  ``real CT`` (the real-scan study's CT slices).

A memorising prior scores far higher on ``train`` than on ``held-out``; a prior that has learnt its family but not
anatomy scores high on both and low on the real slices. ``--write-cards`` stores each prior's row on its card (under
``denoising_psnr``, the card's checksum renewed); the printed line names the CPU.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from recon.data.families import get_family
from recon.data.real_scans import fine_and_truth_of, real_ct_scans, real_mr_scans
from recon.files import atomic_write_text
from recon.models.checkpoints import CARD, CARD_DIGEST, card_digest, load_card, load_denoiser, resolve, shipped_name
from recon.models.denoiser import denoising_psnr
from recon.provenance import provenance
from studies.statistics import unpaired_difference

SIGMAS = (0.05, 0.1, 0.2, 0.4)


def shipped_priors() -> list[str]:
    """The shipped checkpoints whose card kind is ``edm`` (diffusion priors), by shipped name."""
    from recon.models.checkpoints import SHIPPED_DIRS

    folders = sorted(p.parent.name for d in SHIPPED_DIRS if d.exists() for p in d.glob(f"*/{CARD}"))
    return [shipped_name(f) for f in dict.fromkeys(folders) if load_card(shipped_name(f))["kind"] == "edm"]


def family_images(data: str, n: int, split: str, seed: int) -> torch.Tensor:
    out = get_family(data).images(n, 64, split, seed)
    return out[0] if isinstance(out, tuple) else out


def image_sets(card: dict, n: int) -> dict[str, torch.Tensor]:
    """The named image sets a prior is measured on (module docstring)."""
    config = card["config"]
    data, seed = config["data"], config["seed"]
    sets = {"train": family_images(data, min(n, config["n_train"]), config["split"], seed)}
    for split in ("test", "val"):
        try:
            sets["held-out"] = family_images(data, n, split, 0)
            break
        except ValueError:
            continue
    if data.startswith("brain"):
        sets["MNI152 test slabs"] = family_images("brain", n, "test", 0)
        sets["real MR"] = fine_and_truth_of(real_mr_scans())[0]
    else:
        sets["real CT"] = fine_and_truth_of(real_ct_scans())[0]
    return sets


def measure(prior: str, n: int) -> dict:
    """``{set: {sigma: mean PSNR}}``, the train-minus-held-out gap per sigma, and the gap's 95 % interval
    (:func:`studies.statistics.unpaired_difference`: a bootstrap over the images of each set, so it carries the
    image sampling only, not the noise draw or training)."""
    card = load_card(prior)
    denoiser = load_denoiser(prior)
    per_image = {name: {s: denoising_psnr(denoiser, images, s, seed=1) for s in SIGMAS}
                 for name, images in image_sets(card, n).items()}
    rows = {name: {str(s): round(float(v.mean()), 2) for s, v in values.items()} for name, values in per_image.items()}
    gaps = {s: unpaired_difference(per_image["train"][s], per_image["held-out"][s]) for s in SIGMAS}
    rows["gap"] = {str(s): round(g.mean, 2) for s, g in gaps.items()}  # the unrounded means' difference
    rows["gap interval"] = {str(s): [round(g.low, 2), round(g.high, 2)] for s, g in gaps.items()}
    return rows


def write_card(prior: str, row: dict, n: int) -> None:
    path = resolve(prior) / CARD
    card = json.loads(path.read_text())
    card["denoising_psnr"] = {"command": f"python benchmarks/prior_gap.py --n {n} --write-cards", "n": n, **row}
    card[CARD_DIGEST] = card_digest(card)
    atomic_write_text(path, json.dumps(card, indent=1) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=32, help="images per set (the real sets have their own count)")
    p.add_argument("--priors", nargs="+", default=None, help="shipped priors by name (default: every EDM prior)")
    p.add_argument("--out", default=None, help="also write the table here as JSON, with its provenance")
    p.add_argument("--write-cards", action="store_true", help="store each prior's row on its card")
    args = p.parse_args(argv)
    record = provenance("python benchmarks/prior_gap.py " + " ".join(argv or []))
    start, results = time.perf_counter(), {}
    for prior in args.priors or shipped_priors():
        results[prior] = row = measure(prior, args.n)
        for name, values in row.items():
            if name == "gap interval":
                print(f"{prior:28s} {name:18s} " + "  ".join(f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in values.values()))
                continue
            print(f"{prior:28s} {name:18s} " + "  ".join(f"{values[str(s)]:6.2f}" for s in SIGMAS), flush=True)
        if args.write_cards:
            write_card(prior, row, args.n)
    print(f"PSNR in dB at sigma = {SIGMAS}; {time.perf_counter() - start:.0f} s on {record['hardware']}")
    if args.out:
        record["seconds"] = round(time.perf_counter() - start)
        with open(args.out, "w") as f:
            json.dump({"provenance": record, "results": results}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
