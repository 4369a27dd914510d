"""Images we can ship and evaluate honestly: procedural phantoms, MNI152 brain slices, out-of-distribution cases;
the registry of data families (:mod:`recon.data.families`) and the intensity rules (:mod:`recon.data.intensity`)."""

from recon.data.brain import brain_slices
from recon.data.families import FAMILIES, Family, get_family, register_family
from recon.data.offgrid import fine_and_truth
from recon.data.ood import ct_small, mr_small, shepp_logan
from recon.data.phantoms import head_ct_phantoms
from recon.data.splits import SPLITS

__all__ = ["FAMILIES", "SPLITS", "Family", "brain_slices", "ct_small", "fine_and_truth", "get_family", "head_ct_phantoms",
           "mr_small", "register_family", "shepp_logan"]
