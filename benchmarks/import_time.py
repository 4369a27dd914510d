"""How long ``import recon`` takes, and a first use of it (not a test).

    python benchmarks/import_time.py [--repeats 5]

Each measurement is a fresh interpreter: ``import recon`` alone (the package loads its parts on first use, so this is
the cost of the front door), then ``import recon; recon.ParallelBeamCT`` (which brings torch in). The target is under
2 s for ``import recon``; the line printed names the CPU.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time

PROBES = {"import recon": "import recon", "import recon + first operator (torch)": "import recon; recon.ParallelBeamCT"}


def seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    repeats = p.parse_args(argv).repeats
    baseline = min(seconds("pass") for _ in range(repeats))  # the interpreter's own start-up
    print(f"CPU: {platform.processor() or platform.machine()}; interpreter start-up {baseline:.3f} s (subtracted)")
    for label, code in PROBES.items():
        best = min(seconds(code) for _ in range(repeats)) - baseline
        print(f"{label}: {best:.3f} s (best of {repeats})")


if __name__ == "__main__":
    main()
