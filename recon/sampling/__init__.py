"""Noise schedules and the samplers' noise levels, the conditional process ``y_t``, sampler steps and the loops that
compose them."""

from recon.sampling.conditional import y_t
from recon.sampling.loops import (
    EVALUATIONS_PER_LEVEL,
    SAMPLERS,
    sample_consistency,
    sample_em,
    sample_heun,
    sample_pc,
)
from recon.sampling.schedules import (
    DEFAULT_RENOISE,
    SIGMA_MAX,
    SIGMA_MIN,
    SigmaSchedule,
    VESchedule,
    VPSchedule,
    get_sigmas_consistency,
    get_sigmas_geometric,
    get_sigmas_karras,
)

__all__ = [
    "DEFAULT_RENOISE",
    "EVALUATIONS_PER_LEVEL",
    "SAMPLERS",
    "SIGMA_MAX",
    "SIGMA_MIN",
    "SigmaSchedule",
    "VESchedule",
    "VPSchedule",
    "get_sigmas_consistency",
    "get_sigmas_geometric",
    "get_sigmas_karras",
    "sample_consistency",
    "sample_em",
    "sample_heun",
    "sample_pc",
    "y_t",
]
