"""recon: the library behind recon-book, a reproducible companion to "Deep Generative Models for Healthcare".

Data flows one way: data (images) -> operators (y = A x + eps) -> denoiser -> sampler -> guidance -> metrics.
"""

from recon import data, metrics, operators, plotting
from recon.conditional import y_t
from recon.operators import CartesianMRI, GaussianCS, LinearOperator, ParallelBeamCT
from recon.schedules import VESchedule, VPSchedule

__all__ = [
    "CartesianMRI",
    "GaussianCS",
    "LinearOperator",
    "ParallelBeamCT",
    "VESchedule",
    "VPSchedule",
    "data",
    "metrics",
    "operators",
    "plotting",
    "y_t",
]
