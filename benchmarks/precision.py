"""fp32 against bf16 autocast for one forward pass of a shipped prior on this machine, and the choice recon makes
(not a test).

    python benchmarks/precision.py [--prior head_ct] [--batches 1 16] [--repeats 5]

bf16 pays only where the CPU computes it natively (AVX512_BF16 or AMX); on an AVX2-only CPU PyTorch emulates it and a
forward pass is several times slower than in fp32. ``recon.models.precision`` decides from the CPU's capability,
not from this timing, so that a run's numbers do not depend on a noisy measurement; this script shows whether the
decision fits the machine. Emulate an AVX2-only CPU on a newer one with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``.
"""

from __future__ import annotations

import argparse
import time

import torch

import recon
from recon.models import precision
from recon.provenance import hardware


def per_forward_ms(prior, batch: int, mode: str, repeats: int, layout=torch.channels_last) -> float:
    prior.precision = mode
    prior.net.to(memory_format=layout)
    x = torch.rand(batch, 1, prior.image_size, prior.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prior(x, 0.5)  # warm-up: oneDNN picks its kernels on the first call
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            prior(x, 0.5)
            times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="head_ct")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    prior = recon.load_prior(args.prior)
    print(hardware())
    print("per forward pass, best of --repeats; channels-last layout (what recon uses) and, for fp32, contiguous")
    print(f"{'batch':>5} {'fp32 ms':>9} {'bf16 ms':>9} {'bf16/fp32':>9} {'fp32 contiguous ms':>19}")
    for batch in args.batches:
        fp32, bf16 = (per_forward_ms(prior, batch, mode, args.repeats) for mode in ("fp32", "bf16"))
        contiguous = per_forward_ms(prior, batch, "fp32", args.repeats, torch.contiguous_format)
        print(f"{batch:>5} {fp32:>9.1f} {bf16:>9.1f} {bf16 / fp32:>9.2f} {contiguous:>19.1f}")
    print(f"recon chooses: {precision.resolve('auto')} (override with {precision.ENVIRONMENT_VARIABLE}=fp32|bf16)")


if __name__ == "__main__":
    main()
