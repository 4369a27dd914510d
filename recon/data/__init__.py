"""Images we can ship and evaluate honestly: procedural phantoms, MNI152 brain slices, out-of-distribution cases."""

from recon.data.brain import brain_slices
from recon.data.offgrid import fine_and_truth
from recon.data.ood import ct_small, mr_small, shepp_logan
from recon.data.phantoms import head_ct_phantoms
from recon.data.splits import SPLITS

__all__ = ["SPLITS", "brain_slices", "ct_small", "fine_and_truth", "head_ct_phantoms", "mr_small", "shepp_logan"]
