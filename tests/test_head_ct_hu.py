"""Head-CT phantoms in HU through a display window: the contrasts of real scans, at any resolution."""

import dataclasses

import numpy as np
import pytest

from recon.data import fine_and_truth
from recon.data.head_ct_hu import HU, head_ct_hu_params, head_ct_hu_phantoms, render_head_ct_hu


def test_reproducible_in_range_and_split_apart():
    a = head_ct_hu_phantoms(4, 32, "train", 0)
    assert a.shape == (4, 1, 32, 32) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert np.array_equal(a.numpy(), head_ct_hu_phantoms(4, 32, "train", 0).numpy())
    assert np.array_equal(a[:2].numpy(), head_ct_hu_phantoms(2, 32, "train", 0).numpy())
    assert not np.allclose(a.numpy(), head_ct_hu_phantoms(4, 32, "val", 0).numpy())


def test_one_description_at_every_resolution():
    params = head_ct_hu_params("test", 0, 3)
    coarse = render_head_ct_hu(params, 32, supersample=8)
    fine = render_head_ct_hu(params, 64, supersample=4)
    np.testing.assert_allclose(fine.reshape(32, 2, 32, 2).mean(axis=(1, 3)), coarse, atol=1e-9)
    truth, rendered = fine_and_truth("head_ct_hu", 2, 32, "test", 0, factor=2)
    assert rendered.shape == (2, 1, 64, 64) and truth.shape == (2, 1, 32, 32)


def test_brain_contrast_is_that_of_a_real_head_ct():
    """Through the window -160..240 HU, brain tissue lies near 0.49 and CSF near 0.41, as on a real scan (the first
    phantom family has CSF at 0.18)."""
    params = dataclasses.replace(head_ct_hu_params("test", 0, 5), window=(-160.0, 240.0), texture=(), sulci=())
    image = render_head_ct_hu(dataclasses.replace(params, head=dataclasses.replace(params.head, lesions=())), 128)
    centre = image[48:80, 48:80]
    brain = np.median(centre[centre > 0.44])
    assert (HU["white"] + 160) / 400 - 0.01 < brain < (HU["grey"] + 160) / 400 + 0.01
    assert centre.min() == pytest.approx((HU["csf"] + 160) / 400, abs=0.03)  # the ventricles
