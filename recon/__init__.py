"""recon: the library behind recon-book, a reproducible companion to "Deep Generative Models for Healthcare".

Data flows one way: data (images) -> operators (y = A x + eps) -> denoiser D(x, sigma) -> sampler -> guidance step ->
metrics. The front door is ``load_prior``, ``simulate`` and ``reconstruct``; ``register_method`` adds a method to it.

Submodules and names load on first use (PEP 562), so ``import recon`` stays light: it imports no plotting, tuning or
privacy package. The book's own studies live in the separate ``studies`` package, which imports this one.
"""

from __future__ import annotations

import importlib

# Public name -> the module that defines it.
_NAMES = {
    "METHODS": "recon.methods",
    "describe_methods": "recon.methods",
    "register_method": "recon.methods",
    "sample_prior": "recon.methods",
    "CartesianMRI": "recon.operators",
    "GaussianCS": "recon.operators",
    "LinearOperator": "recon.operators",
    "ParallelBeamCT": "recon.operators",
    "Measurement": "recon.operators.noise",
    "simulate": "recon.operators.noise",
    "DDRMProximalGuide": "recon.guidance",
    "DPSGuide": "recon.guidance",
    "EstimateProjectionGuide": "recon.guidance",
    "Guide": "recon.guidance",
    "ProximalGuide": "recon.guidance",
    "Record": "recon.reconstruction",
    "load_prior": "recon.reconstruction",
    "reconstruct": "recon.reconstruction",
    "SigmaSchedule": "recon.sampling",
    "VESchedule": "recon.sampling",
    "VPSchedule": "recon.sampling",
    "y_t": "recon.sampling",
    "sample": "recon.synthesis",
}
_SUBMODULES = ("data", "guidance", "metrics", "methods", "models", "operators", "random", "sampling", "synthesis",
               "training", "tuning")

__all__ = [*sorted(_NAMES), *_SUBMODULES]  # noqa: PLE0604 (the names of the two tables above)


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"recon.{name}")
    else:
        raise AttributeError(f"module 'recon' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
