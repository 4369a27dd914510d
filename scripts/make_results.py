"""Run the book's heavy experiments and write each to ``results/NAME.json`` with its provenance.

    python scripts/make_results.py evaluation lambda_study        # every experiment: `make results`
    python scripts/make_results.py evaluation --set n_images=64   # other options (JSON values), for every name

The notebooks read these files and repeat a small part live, asserting agreement; `make results` reruns them all.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from recon.cli.arguments import key_values
from recon.provenance import code_version, provenance
from studies.experiments import EXPERIMENTS, run_experiment
from studies.results import save_results


def parse_options(pairs: list[str]) -> dict:
    return key_values(pairs, "--set", "out=results/x.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"experiments to run (default: all of {sorted(EXPERIMENTS)})")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="options of a single experiment")
    args = parser.parse_args(argv)
    names = args.names or sorted(EXPERIMENTS)
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise SystemExit(f"unknown experiments {unknown}; choose from {sorted(EXPERIMENTS)}")
    options = parse_options(args.set)
    version = code_version()  # the code as imported now, at the start: later edits to the tree do not run here
    for name in names:
        start = time.perf_counter()
        command = "python scripts/make_results.py " + shlex.join([name] + (["--set", *args.set] if args.set else []))
        record = {**provenance(command, device=options.get("device", "cpu")), "code_version": version}
        results = run_experiment(name, **options)
        record["seconds"] = round(time.perf_counter() - start)
        path = save_results(name, results, record)
        print(f"{name}: wrote {path} in {record['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
