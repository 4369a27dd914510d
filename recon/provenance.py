"""Where a number came from: the command, the code version, the date and the hardware, for cards and results files."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch

from recon.models import precision

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware(device: torch.device | str = "cpu", network_precision: str = "auto") -> str:
    """The device in words, with the network precision (``network_precision`` resolved by
    :mod:`recon.models.precision` on this device)."""
    device = torch.device(device)
    if device.type == "cuda":
        name = f"{torch.cuda.get_device_name(device)} (CUDA)"
    else:
        name = f"{cpu_model()}, {torch.get_num_threads()} threads"
    return f"{name}, torch {torch.__version__}, network precision {precision.describe(device, network_precision)}"


def code_version() -> str:
    """The git commit of the checkout, ``+dirty`` when the code that computes (``recon/``, ``studies/``,
    ``scripts/``) has uncommitted changes; ``RECON_CODE_VERSION`` where the code runs from a copy without git (a lent
    GPU machine); ``unknown`` otherwise."""
    if os.environ.get("RECON_CODE_VERSION"):
        return os.environ["RECON_CODE_VERSION"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        watched = ["recon", "studies", "scripts"]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *watched], cwd=ROOT,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance(command: str, device: torch.device | str = "cpu", network_precision: str = "auto") -> dict:
    """A record of how a result was made."""
    return {"command": command, "code_version": code_version(), "hardware": hardware(device, network_precision),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
