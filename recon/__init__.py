"""recon: the library behind recon-book, a reproducible companion to "Deep Generative Models for Healthcare".

Data flows one way: data (images) -> operators (y = A x + eps) -> denoiser D(x, sigma) -> sampler -> guidance step ->
metrics / figures. The front door is ``load_prior`` and ``reconstruct``.
"""

from recon import benchmark, checkpoints, data, metrics, operators, plotting, random, samplers
from recon.conditional import y_t
from recon.guidance import ProximalGuide
from recon.operators import CartesianMRI, GaussianCS, LinearOperator, ParallelBeamCT
from recon.reconstruction import METHODS, Record, load_prior, reconstruct
from recon.schedules import VESchedule, VPSchedule

__all__ = [
    "METHODS",
    "CartesianMRI",
    "GaussianCS",
    "LinearOperator",
    "ParallelBeamCT",
    "ProximalGuide",
    "Record",
    "VESchedule",
    "VPSchedule",
    "benchmark",
    "checkpoints",
    "data",
    "load_prior",
    "metrics",
    "operators",
    "plotting",
    "random",
    "reconstruct",
    "samplers",
    "y_t",
]
