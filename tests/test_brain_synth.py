"""The synthetic-head family: its warps are diffeomorphisms, its MNI152 axial cuts avoid the brain family's held-out
slabs, its images are reproducible, in [0, 1], and render finer consistently."""

import numpy as np
import pytest

from recon.data import archives
from recon.data.brain import SLABS
from recon.data.brain_synth import (
    SQUARINGS,
    VELOCITY_GRID,
    brain_synth_slices,
    diffeomorphism,
    draw_synth_slice,
    render_synth_slice,
)


def jacobian_determinant(displacement: np.ndarray) -> np.ndarray:
    size = displacement.shape[-1]
    scale = size / 2  # displacement in [-1, 1] units, derivatives per pixel
    du_dv, du_du = np.gradient(displacement[0] * scale)
    dv_dv, dv_du = np.gradient(displacement[1] * scale)
    return (1 + du_du) * (1 + dv_dv) - du_dv * dv_du


def test_the_warp_is_a_diffeomorphism_even_at_its_strongest():
    rng = np.random.default_rng(0)
    for _ in range(20):
        velocity = rng.normal(0, 1, size=(2, VELOCITY_GRID, VELOCITY_GRID)) * 0.035 * 1.5  # past the largest drawn
        assert jacobian_determinant(diffeomorphism(velocity, 64)).min() > 0
    assert np.abs(diffeomorphism(np.zeros((2, VELOCITY_GRID, VELOCITY_GRID)), 64)).max() == 0
    assert SQUARINGS >= 4


def test_mni152_axial_cuts_stay_in_the_brain_familys_training_slabs():
    allowed = SLABS["train"]
    seen = 0
    for split in ("train", "val", "test"):
        for i in range(200):
            p = draw_synth_slice(split, 0, i, 16)
            if p.source != "colin27" and p.orientation == "axial":
                seen += 1
                assert any(lo <= p.level <= hi for lo, hi in allowed), (split, i, p.level)
    assert seen > 50


def synth(n, size, split, seed):
    try:
        return brain_synth_slices(n, size, split, seed, workers=1)
    except archives.FetchError as error:
        pytest.skip(f"Colin27 cannot be fetched here: {error}")


def test_images_are_reproducible_and_in_range():
    first = synth(4, 32, "val", 3)
    assert first.shape == (4, 1, 32, 32) and 0 <= float(first.min()) and float(first.max()) <= 1
    assert np.array_equal(first.numpy(), synth(4, 32, "val", 3).numpy())
    assert not np.array_equal(first.numpy(), synth(4, 32, "test", 3).numpy())


def test_a_finer_rendering_averages_back_to_the_image():
    coarse = synth(6, 32, "val", 0)[:, 0].numpy()
    for i in range(6):
        fine = render_synth_slice(draw_synth_slice("val", 0, i, 32), 128)
        assert np.abs(fine.reshape(32, 4, 32, 4).mean(axis=(1, 3)) - coarse[i]).mean() < 0.04
