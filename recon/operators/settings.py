"""Measurement settings by name, so that a command line, a card and an experiment can say which scanner they mean:
``"ct:16"`` (parallel-beam CT, 16 views over 180 degrees), ``"ct:16:120"`` (the same views over a limited 120-degree
arc), ``"mri:4"`` or ``"mri:4:equispaced"`` (Cartesian MRI at
4x with a line pattern of :data:`recon.operators.masks.MASK_PATTERNS`), ``"mri:4:equispaced:rows"`` (the phase-encoding
direction turned by 90 degrees)."""

from __future__ import annotations

from recon.operators.masks import MASK_PATTERNS
from recon.operators.mri import CartesianMRI
from recon.operators.radon import ParallelBeamCT

MRI_CENTER_FRACTION = {2: 0.16, 3: 0.1, 4: 0.08, 6: 0.06, 8: 0.04, 10: 0.03}


def center_fraction(acceleration: float) -> float:
    """The fully sampled centre used at an acceleration: the protocol's 0.08 at 4x and 0.04 at 8x, and between."""
    nearest = min(MRI_CENTER_FRACTION, key=lambda a: abs(a - acceleration))
    return MRI_CENTER_FRACTION[nearest]


def make_operator(setting: str, size: int = 64, seed: int = 0):
    """The operator a setting names (see the module docstring)."""
    parts = setting.split(":")
    try:
        if parts[0] == "ct" and len(parts) in (2, 3):
            return ParallelBeamCT(size, int(parts[1]), arc=float(parts[2]) if len(parts) == 3 else 180.0)
        if parts[0] == "mri" and len(parts) in (2, 3, 4):
            pattern = parts[2] if len(parts) >= 3 else "random"
            orientation = parts[3] if len(parts) == 4 else "columns"
            if pattern not in MASK_PATTERNS:
                raise ValueError(f"unknown mask pattern {pattern!r}")
            acceleration = float(parts[1])
            return CartesianMRI(size, acceleration, center_fraction(acceleration), pattern, seed=seed,
                                orientation=orientation)
    except ValueError as error:
        raise ValueError(f"bad setting {setting!r} ({error}); write 'ct:VIEWS[:ARC_DEGREES]' or 'mri:ACCELERATION[:PATTERN[:rows]]' with a "
                         f"pattern of {sorted(MASK_PATTERNS)}.") from None
    raise ValueError(f"bad setting {setting!r}; write 'ct:VIEWS[:ARC_DEGREES]' or 'mri:ACCELERATION[:PATTERN[:rows]]' with a pattern of "
                     f"{sorted(MASK_PATTERNS)}.")


def classical(operator, y):
    """The operator's classical inverse, the supervised network's input: FBP for CT, zero-filled for MRI."""
    return operator.fbp(y) if hasattr(operator, "fbp") else operator.zero_filled(y)
