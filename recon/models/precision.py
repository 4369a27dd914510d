"""The network's arithmetic, chosen by what the machine does well: bf16 autocast where it is native, fp32 otherwise.

bf16 halves a forward pass on CPUs with AVX512_BF16 or AMX, but on an AVX2-only CPU PyTorch emulates it and a forward
pass is 6-7x *slower* than in fp32; so ``"auto"`` asks the CPU (or the CUDA device) before choosing. One choice serves
sampling, training and the notebooks:

* an explicit ``"fp32"`` or ``"bf16"`` (a denoiser's ``precision`` attribute, ``--precision`` of the training
  command) wins;
* else the environment variable ``RECON_PRECISION`` (``auto``, ``fp32`` or ``bf16``), for a whole run such as
  ``RECON_PRECISION=fp32 make book``;
* else the machine's capability.

``benchmarks/precision.py`` times both on the current machine and prints the choice.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
ENVIRONMENT_VARIABLE = "RECON_PRECISION"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    return precision


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether PyTorch computes bf16 natively on this CPU: the CPU has AVX512_BF16 or AMX (PyTorch's own probe, else
    ``/proc/cpuinfo``) and PyTorch's and oneDNN's kernels may use AVX-512 (``ATEN_CPU_CAPABILITY`` and
    ``ONEDNN_MAX_CPU_ISA`` can cap them at AVX2, which emulates an older CPU)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(probe) for probe in probes):
        has_flag = any(probe() for probe in probes)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        has_flag = bool(set(cpuinfo.read_text().split() if cpuinfo.exists() else ()) & {"avx512_bf16", "amx_bf16"})
    kernels = torch.backends.cpu.get_cpu_capability().upper().startswith("AVX512")
    onednn_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return has_flag and kernels and (onednn_cap == "ALL" or "BF16" in onednn_cap or "AMX" in onednn_cap)


def device_has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":  # Ampere (compute capability 8) and newer; older GPUs emulate bf16
        return torch.cuda.is_available() and torch.cuda.get_device_properties(device).major >= 8
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve(precision: str = "auto", device: torch.device | str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"``: the explicit choice, else ``RECON_PRECISION``, else the device's capability."""
    check_precision(precision)
    if precision == "auto":
        precision = check_precision(os.environ.get(ENVIRONMENT_VARIABLE, "auto") or "auto")
    if precision == "auto":
        precision = "bf16" if device_has_native_bf16(torch.device(device)) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str):
    """A bf16 autocast context on ``device`` when ``precision`` resolves to bf16, else a no-op context."""
    device = torch.device(device)
    if resolve(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device | str = "cpu", precision: str = "auto") -> str:
    """One line for cards and results files: the choice and why."""
    device = torch.device(device)
    if device.type == "cpu":
        where = f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}"
    else:
        where = f"{device.type} device, native bf16: {device_has_native_bf16(device)}"
    override = os.environ.get(ENVIRONMENT_VARIABLE)
    chosen = resolve(precision, device)
    return f"{chosen} ({where}" + (f", {ENVIRONMENT_VARIABLE}={override})" if override else ")")
