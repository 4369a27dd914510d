"""Evaluation: metrics, the results table, tuning, the lam ablation and the realism measure."""

from recon.evaluation.metrics import psnr, relative_error, relative_residual, ssim

__all__ = ["psnr", "relative_error", "relative_residual", "ssim"]
