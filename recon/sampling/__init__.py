"""Noise schedules, the conditional process ``y_t``, sampler steps and the loops that compose them."""

from recon.sampling.conditional import y_t
from recon.sampling.loops import (
                                  SAMPLERS,
                                  get_sigmas_consistency,
                                  get_sigmas_geometric,
                                  get_sigmas_karras,
                                  sample_consistency,
                                  sample_em,
                                  sample_heun,
                                  sample_pc,
)
from recon.sampling.schedules import SigmaSchedule, VESchedule, VPSchedule

__all__ = [
    "SAMPLERS",
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
