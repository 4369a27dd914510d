"""Guides: what a sampler does around each network evaluation to honour the measurements (the hook interface: :mod:`recon.sampling.hooks`)."""

from recon.guidance.ddrm import DDRMProximalGuide
from recon.guidance.dps import DPSGuide
from recon.guidance.proximal import EstimateProjectionGuide, MeasurementGuide, ProximalGuide, ReplacementGuide
from recon.sampling.hooks import Compose, Guide, StepContext, guided_denoise

__all__ = [
    "Compose",
    "DDRMProximalGuide",
    "DPSGuide",
    "EstimateProjectionGuide",
    "Guide",
    "MeasurementGuide",
    "ProximalGuide",
    "ReplacementGuide",
    "StepContext",
    "guided_denoise",
]
