"""Networks behind the ``D(x, sigma)`` contract, their precision, and checkpoints with cards."""

from recon.models.checkpoints import MODEL_KINDS, load_card, load_denoiser, register_model_kind, save_checkpoint
from recon.models.consistency import ConsistencyDenoiser, ODEConsistency, is_consistency_model
from recon.models.denoiser import (
    ClassConditioned,
    CountingDenoiser,
    Denoiser,
    EDMDenoiser,
    GaussianDenoiser,
    score_from_denoised,
)
from recon.models.networks import UNet
from recon.models.precision import PRECISIONS
from recon.models.supervised import PostProcessingNet

__all__ = [
    "MODEL_KINDS",
    "PRECISIONS",
    "ClassConditioned",
    "ConsistencyDenoiser",
    "CountingDenoiser",
    "Denoiser",
    "EDMDenoiser",
    "GaussianDenoiser",
    "ODEConsistency",
    "PostProcessingNet",
    "UNet",
    "is_consistency_model",
    "load_card",
    "load_denoiser",
    "register_model_kind",
    "save_checkpoint",
    "score_from_denoised",
]
