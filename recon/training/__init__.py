"""Training: losses as small callables, and one loop that trains any of them."""

from recon.training.loop import EpochBatches, TrainConfig, TrainState, ema_beta, train, train_step
from recon.training.losses import LOSSES, ECTLoss, EDMLoss, SupervisedLoss

__all__ = ["LOSSES", "ECTLoss", "EDMLoss", "EpochBatches", "SupervisedLoss", "TrainConfig", "TrainState", "ema_beta", "train", "train_step"]
