"""Train the shift chapter's supervised networks (single-setting, family, oracles), the synthetic-data chapter's
priors (public, private at each ε, non-private) and the head-CT prior retrained with other seeds (the evaluation's
training-variance study), skipping those whose card exists.

    python scripts/train_networks.py                # every network, one after the other, resuming interrupted runs
    python scripts/train_networks.py --dry-run      # print the commands
    python scripts/train_networks.py --device cuda --only head_ct_64_sup_family

Each run is `python -m recon.train --loss supervised ...`, with `--resume` where a state was saved, so a stopped run
continues where it was.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from recon.cli.train import STATE
from recon.models.checkpoints import CARD
from recon.train import main as train_main
from studies.evaluation_study import seed_commands
from studies.shift_study import network_commands
from studies.synthetic_study import dp_commands


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--only", nargs="*", default=None, help="checkpoint folder names to train (default: all)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    for folder, train_args in (network_commands(device=args.device) + dp_commands(device=args.device)
                              + seed_commands(device=args.device)):
        if args.only is not None and Path(folder).name not in args.only:
            continue
        done = (Path(folder) / CARD).exists()
        print(("done  " if done else "train ") + "python -m recon.train " + shlex.join(train_args), flush=True)
        if not done and not args.dry_run:
            resuming = (Path(folder) / STATE).exists()  # --resume needs a state; a new run starts without
            train_main(train_args + (["--resume"] if resuming else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
