"""Measurement settings by name, so that a command line, a card and an experiment can say which scanner they mean:
``"ct:16"`` (parallel-beam CT, 16 views over 180 degrees), ``"ct:16:120"`` (the same views over a limited 120-degree
arc), ``"mri:4"`` or ``"mri:4:equispaced"`` (Cartesian MRI at
4x with a line pattern of :data:`recon.operators.masks.MASK_PATTERNS`), ``"mri:4:equispaced:rows"`` (the phase-encoding
direction turned by 90 degrees). Also what a setting's operator can use and costs: :data:`MAX_VIEWS_PER_PIXEL` and
:func:`operator_bytes`, so that a program can refuse a setting before it allocates anything."""

from __future__ import annotations

from recon.operators.masks import MASK_PATTERNS
from recon.operators.mri import CartesianMRI
from recon.operators.radon import ParallelBeamCT

MRI_CENTER_FRACTION = {2: 0.16, 3: 0.1, 4: 0.08, 6: 0.06, 8: 0.04, 10: 0.03}
FORMS = "write 'ct:VIEWS[:ARC_DEGREES]' or 'mri:ACCELERATION[:PATTERN[:rows]]' with a pattern of"
# More views than this many per detector bin sample the angle over 5 times finer than an N-pixel image resolves
# (about pi/2 N views suffice), and the system matrix grows with every one.
MAX_VIEWS_PER_PIXEL = 8
# Peak bytes per nonzero weight while a CT system matrix is built (COO indices and values, then the CSR copy): 90
# measured at 64 pixels with 64 and 512 views, which held 1.94 nonzero bilinear weights per pixel and view.
CT_BYTES_PER_WEIGHT, CT_WEIGHTS_PER_PIXEL_VIEW = 96, 2.0


def center_fraction(acceleration: float) -> float:
    """The fully sampled centre used at an acceleration: the protocol's 0.08 at 4x and 0.04 at 8x, and between."""
    nearest = min(MRI_CENTER_FRACTION, key=lambda a: abs(a - acceleration))
    return MRI_CENTER_FRACTION[nearest]


def parse_setting(setting: str) -> tuple[str, dict]:
    """``("ct", {n_views, arc})`` or ``("mri", {acceleration, pattern, orientation})`` for a setting's name."""
    parts = setting.split(":")
    try:
        if parts[0] == "ct" and len(parts) in (2, 3):
            return "ct", {"n_views": int(parts[1]), "arc": float(parts[2]) if len(parts) == 3 else 180.0}
        if parts[0] == "mri" and len(parts) in (2, 3, 4):
            pattern = parts[2] if len(parts) >= 3 else "random"
            if pattern not in MASK_PATTERNS:
                raise ValueError(f"unknown mask pattern {pattern!r}")
            return "mri", {"acceleration": float(parts[1]), "pattern": pattern,
                           "orientation": parts[3] if len(parts) == 4 else "columns"}
    except ValueError as error:
        raise ValueError(f"bad setting {setting!r} ({error}); {FORMS} {sorted(MASK_PATTERNS)}.") from None
    raise ValueError(f"bad setting {setting!r}; {FORMS} {sorted(MASK_PATTERNS)}.")


def make_operator(setting: str, size: int = 64, seed: int = 0):
    """The operator a setting names (see the module docstring)."""
    kind, p = parse_setting(setting)
    try:
        if kind == "ct":
            return ParallelBeamCT(size, p["n_views"], arc=p["arc"])
        return CartesianMRI(size, p["acceleration"], center_fraction(p["acceleration"]), p["pattern"], seed=seed,
                            orientation=p["orientation"])
    except ValueError as error:
        raise ValueError(f"bad setting {setting!r} ({error}); {FORMS} {sorted(MASK_PATTERNS)}.") from None


def operator_bytes(setting: str, size: int, factor: int = 2) -> float:
    """Roughly the peak memory of building the operator a setting names at ``size`` pixels with its rendering
    ``factor`` times finer (:meth:`ParallelBeamCT.A_fine`): the two CT system matrices, and the Gram matrix the
    pseudo-inverse eigendecomposes (at most ``svd_max`` = 4096 rows); for MRI a few complex images."""
    kind, p = parse_setting(setting)
    if kind == "mri":
        return 16.0 * 8 * (factor * size) ** 2
    weights = CT_WEIGHTS_PER_PIXEL_VIEW * p["n_views"] * (size**2 + (factor * size) ** 2)
    gram = min(p["n_views"] * size, size**2, 4096) ** 2
    return CT_BYTES_PER_WEIGHT * weights + 8.0 * 3 * gram


def classical(operator, y):
    """The operator's classical inverse, the supervised network's input: FBP for CT, zero-filled for MRI."""
    return operator.fbp(y) if hasattr(operator, "fbp") else operator.zero_filled(y)
