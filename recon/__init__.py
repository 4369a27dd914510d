"""recon: the library behind recon-book, a reproducible companion to "Deep Generative Models for Healthcare".

Data flows one way: data (images) -> operators (y = A x + eps) -> denoiser D(x, sigma) -> sampler -> guidance step ->
metrics / figures. The front door is ``load_prior`` and ``reconstruct``; ``register_method`` adds a method to it.
"""

from recon import (
    data,
    evaluation,
    guidance,
    methods,
    models,
    operators,
    plotting,
    random,
    sampling,
    synthesis,
    training,
)
from recon.guidance import DDRMProximalGuide, DPSGuide, EstimateProjectionGuide, Guide, ProximalGuide
from recon.methods import METHODS, describe_methods, register_method, sample_prior
from recon.operators import CartesianMRI, GaussianCS, LinearOperator, ParallelBeamCT
from recon.reconstruction import Record, load_prior, reconstruct
from recon.sampling import SigmaSchedule, VESchedule, VPSchedule, y_t
from recon.synthesis import sample

__all__ = [
    "METHODS",
    "CartesianMRI",
    "DDRMProximalGuide",
    "DPSGuide",
    "EstimateProjectionGuide",
    "GaussianCS",
    "Guide",
    "LinearOperator",
    "ParallelBeamCT",
    "ProximalGuide",
    "Record",
    "SigmaSchedule",
    "VESchedule",
    "VPSchedule",
    "data",
    "describe_methods",
    "evaluation",
    "guidance",
    "load_prior",
    "methods",
    "models",
    "operators",
    "plotting",
    "random",
    "reconstruct",
    "register_method",
    "sample",
    "sample_prior",
    "sampling",
    "synthesis",
    "training",
    "y_t",
]
