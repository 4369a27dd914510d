"""`pip install .` into a fresh virtual environment gives a working library: import, a shipped prior, a reconstruction.

Slow (a minute or two: torch's local wheel and the pinned dependencies are installed); it catches a dependency that
pyproject.toml forgets, or shipped priors that stay behind in the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import importlib.util, sys, time
start = time.perf_counter()
import recon
import_seconds = time.perf_counter() - start
for extra in ("optuna", "opacus", "studies", "matplotlib.pyplot"):  # extras and the book's studies stay out
    assert extra not in sys.modules, extra
assert importlib.util.find_spec("optuna") is None and importlib.util.find_spec("opacus") is None
assert importlib.util.find_spec("studies") is None, "the book's studies must not be in the wheel"
import torch
prior = recon.load_prior("head_ct")
op = recon.ParallelBeamCT(64, 16)
x = recon.data.head_ct_phantoms(1, 64, "test", 0)
x_hat, record = recon.reconstruct(op.A(x), op, prior, method="proximal", steps=30)
psnr = float(recon.metrics.psnr(x_hat, x))
fbp = float(recon.metrics.psnr(op.fbp(op.A(x)), x))
assert "site-packages" in recon.__file__ and record.nfe == 30 and psnr > fbp + 5, (recon.__file__, psnr, fbp)
print("ok", round(psnr, 1), round(fbp, 1), f"import recon {import_seconds:.2f} s")
"""


def test_pip_install_into_a_fresh_environment(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "_build", "_vendor", "notebooks",
                                                                "book", "*.egg-info", "build", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["torch==2.13.0"], check=True, timeout=900)
    subprocess.run(pip + [str(source), "-c", str(ROOT / "constraints.txt")], check=True, timeout=900)
    result = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-3000:]


def test_every_checkpoint_in_the_checkout_ships_and_every_shipped_file_exists():
    """A checkpoint added to checkpoints/ must join pyproject's data-files (or the wheel would lack it), and a listed
    file must exist (or `pip install .` fails)."""
    import tomllib

    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    listed = {Path(f) for files in data_files.values() for f in files if f.startswith("checkpoints/")}
    present = {p.relative_to(ROOT) for card in ROOT.glob("checkpoints/*/card.json")
               for p in (card, card.parent / "model.safetensors")}
    assert present - listed == set(), f"add to pyproject.toml's data-files: {sorted(map(str, present - listed))}"
    assert listed - present == set(), f"listed in pyproject.toml but missing: {sorted(map(str, listed - present))}"
