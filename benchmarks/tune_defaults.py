"""Choose the TV weight, the DPS step size and the sampler on the validation split (never test images); not a test.

    python benchmarks/tune_defaults.py [--n-images 4] [--steps 60]

Prints, per setting and noise level, the validation PSNR of each candidate; the defaults of the methods in
recon/methods.py and the operators' default_tv_weight record the choices this script made (the book states them).
"""

from __future__ import annotations

import argparse

import recon
from recon.data import brain_slices, head_ct_phantoms
from recon.evaluation.benchmark import Setting, mean_se, run_setting


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--tv-weights", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument("--zetas", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0])
    args = parser.parse_args(argv)
    x_ct = head_ct_phantoms(args.n_images, 64, "val", 0)
    x_mr = brain_slices(args.n_images, 64, "val", 0)
    prior_ct, prior_mr = recon.load_prior("head_ct"), recon.load_prior("brain")
    candidates = {f"tv {w:g}": {"method": "tv", "weight": w} for w in args.tv_weights}
    candidates |= {f"dps {z:g}": {"method": "dps", "zeta": z, "steps": args.steps} for z in args.zetas}
    candidates |= {"proximal em": {"method": "proximal_ddrm", "sampler": "em", "steps": args.steps},
                   "proximal pc": {"method": "proximal_ddrm", "sampler": "pc", "steps": args.steps // 2}}
    for noise in (0.0, 0.01):
        for name, op, x, prior in (("CT, 16 views", recon.ParallelBeamCT(64, 16), x_ct, prior_ct),
                                   ("MRI, 8x", recon.CartesianMRI(64, 8, 0.04, seed=0), x_mr, prior_mr)):
            rows = run_setting(Setting(name, op, x, prior, noise, candidates), seed=0)
            for row in rows:
                print(f"{name:<13} noise {noise:<5g} {row['method']:<10} {mean_se(row['psnr'])[0]:6.2f} dB")


if __name__ == "__main__":
    main()
