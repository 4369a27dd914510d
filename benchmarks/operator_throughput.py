"""Forward + adjoint throughput of ParallelBeamCT against scikit-image's radon / iradon (not a test).

    python benchmarks/operator_throughput.py [--repeats 3]

scikit-image has no exact adjoint; its unfiltered ``iradon`` (a linear-interpolation back-projection) stands in for
one. Each row times one forward plus one adjoint over a batch, best of ``--repeats``; the system matrix is built once
before timing (its build time is reported separately).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.transform import iradon, radon

from recon.data import head_ct_phantoms
from recon.operators import ParallelBeamCT


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--views", type=int, nargs="+", default=[8, 23, 180])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args(argv)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = f"{'size':>4} {'views':>5} {'batch':>5} {'build s':>8} {'recon ms':>9} {'skimage ms':>10} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        for views in args.views:
            start = time.perf_counter()
            op = ParallelBeamCT(size, views)
            build = time.perf_counter() - start
            theta = np.degrees(op.angles)
            for batch in args.batches:
                x = head_ct_phantoms(batch, size, "test", 0)
                images = x[:, 0].double().numpy()

                def ours(op=op, x=x):
                    op.A_adjoint(op.A(x))

                def skimage(images=images, theta=theta):
                    for image in images:
                        sino = radon(image, theta=theta, circle=True)
                        iradon(sino, theta=theta, filter_name=None, circle=True)

                t_ours = best_time(ours, args.repeats)
                t_ski = best_time(skimage, args.repeats)
                print(f"{size:>4} {views:>5} {batch:>5} {build:>8.2f} {1e3 * t_ours:>9.2f} {1e3 * t_ski:>10.1f} "
                      f"{t_ski / t_ours:>7.0f}x")


if __name__ == "__main__":
    main()
