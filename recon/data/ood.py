"""Out-of-distribution test images: the Shepp–Logan phantom and a real CT slice, both shipped inside wheels."""

from __future__ import annotations

import numpy as np
import torch
from skimage.transform import resize

from recon._checks import check_positive_int
from recon.data.intensity import CT_WINDOW, MR_PERCENTILE, percentile_to_unit, window_to_unit


def _to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    out = resize(image, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return torch.from_numpy(out[None, None].astype(np.float32))


def shepp_logan(size: int = 64) -> torch.Tensor:
    """scikit-image's modified Shepp–Logan phantom (Shepp & Logan 1974), ``(1, 1, size, size)`` in [0, 1]."""
    from skimage.data import shepp_logan_phantom

    check_positive_int(size, "size", 8)
    return _to_tensor(shepp_logan_phantom(), size)


def ct_small(size: int = 64, window: tuple[float, float] = CT_WINDOW) -> torch.Tensor:
    """pydicom's real ``CT_small.dcm`` (128x128), in Hounsfield units mapped through a display window to [0, 1].

    The window ``(low, high)`` in HU maps ``low`` to 0 and ``high`` to 1; values outside it saturate, as on a scanner
    display (the default is a soft-tissue window). Use it only as an out-of-distribution test: it is one real slice.
    """
    import pydicom
    from pydicom.data import get_testdata_file

    check_positive_int(size, "size", 8)
    if not window[1] > window[0]:
        raise ValueError(f"window must be (low, high) with high > low in HU; got {window}.")
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return _to_tensor(window_to_unit(hu, window), size)


def mr_small(size: int = 64, percentile: float = MR_PERCENTILE) -> torch.Tensor:
    """pydicom's real ``MR_small.dcm`` (64x64, a head MR slice), scaled to [0, 1] by its ``percentile`` intensity (values
    above saturate). One real slice: an out-of-distribution test, never training data."""
    import pydicom
    from pydicom.data import get_testdata_file

    check_positive_int(size, "size", 8)
    if not 50 < percentile <= 100:
        raise ValueError(f"percentile must lie in (50, 100]; got {percentile}.")
    pixels = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(np.float64)
    return _to_tensor(percentile_to_unit(pixels, percentile), size)
