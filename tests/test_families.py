"""The registry of data families and the intensity rules: every family draws, renders finer where it can, names its
prior's folder; a family registered here resolves everywhere and leaves; the rules clip at their bounds."""

import numpy as np
import pytest
import torch

from recon.data import fine_and_truth
from recon.data.families import FAMILIES, Family, get_family, register_family, renderer
from recon.data.intensity import (
    CT_WINDOW,
    RULES,
    get_rule,
    percentile_to_unit,
    percentile_top,
    rule_for_modality,
    window_to_unit,
)
from recon.models.checkpoints import SHIPPED_DIRS, shipped_folder, shipped_name

NAMES = sorted(FAMILIES)


def test_every_family_of_today_is_registered():
    assert set(NAMES) == {"head_ct", "brain", "head_ct_public", "head_ct_private", "head_ct_hu", "brain_real",
                          "head_ct_mixed", "brain_synth"}
    assert get_family("head_ct_public").labels == (0,) and get_family("head_ct_private").labels == (0, 1)
    assert all(f.intensity in RULES for f in FAMILIES.values())


@pytest.mark.parametrize("name", NAMES)
def test_every_family_draws(name):
    family = get_family(name)
    split = "val"  # every family has one, and brain_real's needs no fetch
    out = family.images(2, 16, split, 0)
    images, labels = out if family.labels is not None else (out, None)
    assert images.shape == (2, 1, 16, 16) and images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert labels is None or set(labels.tolist()) <= set(family.labels)
    again = family.images(2, 16, split, 0)
    assert torch.equal(images, again[0] if labels is not None else again)


@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].render is not None])
def test_every_rendering_family_measures_off_grid(name):
    family = get_family(name)
    fine = family.render("val", 0, 1, 16, 2)
    assert isinstance(fine, np.ndarray) and fine.shape == (32, 32)
    truth, fine_t = fine_and_truth(name, 2, 16, "val", 0, factor=2)
    assert truth.shape == (2, 1, 16, 16) and fine_t.shape == (2, 1, 32, 32)
    np.testing.assert_array_equal(fine_t[1, 0].numpy(), fine.astype(np.float32))
    drawn = family.images(2, 16, "val", 0)
    assert float((truth - drawn).abs().mean()) < 0.05  # the same images up to rasterisation


def test_families_without_rendering_say_so():
    assert get_family("head_ct_public").render is None
    with pytest.raises(ValueError, match="no finer rendering.*head_ct"):
        fine_and_truth("head_ct_public", 1, 16, "val", 0, factor=2)


@pytest.mark.parametrize("name", [n for n in NAMES if FAMILIES[n].prior is not None])
def test_every_prior_name_resolves_to_its_folder(name):
    prior = get_family(name).prior
    folder = shipped_folder(prior)
    assert folder.endswith("_64") or "_64_" in folder
    assert shipped_folder(shipped_name(folder)) == folder
    shipped = [d / folder for d in SHIPPED_DIRS if (d / folder / "card.json").exists()]
    assert shipped, f"no shipped folder {folder} for the prior {prior!r} of family {name!r}"


def test_prior_folders_keep_their_names():
    assert shipped_folder("head_ct_sup_ct16") == "head_ct_64_sup_ct16"
    assert shipped_folder("head_ct_private") == "head_ct_64_private"  # a labelled family files under head_ct
    assert shipped_folder("head_ct_dp_eps4") == "head_ct_64_dp_eps4"
    assert shipped_folder("head_ct_hu_cm") == "head_ct_hu_64_cm" and shipped_folder("brain") == "brain_64"
    assert shipped_folder("head_ct_mixed") == "head_ct_mixed_64"


def test_duplicate_and_unknown_names_are_refused():
    with pytest.raises(ValueError, match="'head_ct' is registered already"):
        register_family(Family("head_ct", get_family("brain").images))
    with pytest.raises(ValueError, match=r"unknown data family 'nope'.*head_ct_hu.*folder"):
        get_family("nope")
    with pytest.raises(ValueError, match="unknown intensity rule"):
        Family("toy", get_family("brain").images, intensity="hounsfield")


def _toy_params(split, seed, index):
    return 0.25 + 0.5 * np.random.default_rng([99, seed, index]).uniform()


def _toy_render(level, n):
    return np.full((n, n), level)


def _toy_images(n, size=64, split="train", seed=0):
    return torch.from_numpy(np.stack([_toy_render(_toy_params(split, seed, i), size) for i in range(n)])[:, None])


@pytest.fixture
def toy_family():
    family = register_family(Family("toy_flat", _toy_images, renderer(_toy_params, _toy_render), prior="toy_flat",
                                    description="flat images of one level"))
    yield family
    del FAMILIES[family.name]


def test_a_new_family_resolves_everywhere_then_leaves(toy_family):
    truth, fine = fine_and_truth("toy_flat", 3, 16, "test", 2, factor=2)
    np.testing.assert_allclose(truth.numpy(), _toy_images(3, 16, "test", 2).numpy(), rtol=1e-6)
    assert fine.shape == (3, 1, 32, 32)
    assert shipped_folder("toy_flat") == "toy_flat_64" and shipped_folder("toy_flat_cm") == "toy_flat_64_cm"


def test_the_toy_family_is_gone():
    assert "toy_flat" not in FAMILIES and shipped_folder("toy_flat_cm") == "toy_flat_cm_64"


def test_window_clips_at_its_bounds():
    low, high = CT_WINDOW
    hu = np.array([low - 500, low, (low + high) / 2, high, high + 500])
    np.testing.assert_array_equal(window_to_unit(hu), [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(window_to_unit(np.array([0.0, 100.0]), (0.0, 100.0)), [0.0, 1.0])


def test_percentile_scaling():
    image = np.arange(1001, dtype=np.float64)  # the 99.5th percentile is 995
    unit = percentile_to_unit(image)
    assert unit[995] == 1.0 and unit[-1] == 1.0 and unit[0] == 0.0 and unit[500] == 500 / 995
    assert percentile_top(np.zeros(4)) == 1e-12  # a blank image stays finite
    np.testing.assert_array_equal(percentile_to_unit(image, top=2000.0), image / 2000.0)


def test_rules_by_name_and_modality():
    assert rule_for_modality("ct") is get_rule("ct_window") and rule_for_modality("mri").name == "mr_percentile"
    two = [np.full((2, 2), 10.0), np.full((2, 2), 20.0)]
    per_volume = get_rule("mr_percentile").to_unit(two, ["a", "b"], CT_WINDOW, 99.5)
    together = get_rule("mr_percentile").to_unit(two, ["a", "a"], CT_WINDOW, 99.5)
    assert all(float(x.max()) == 1.0 for x in per_volume) and float(together[0].max()) == 0.5
    assert get_rule("ct_window").describe((-100.0, 100.0)) == {"rule": get_rule("ct_window").description,
                                                                "window_hu": [-100.0, 100.0]}
    with pytest.raises(ValueError, match="unknown intensity rule"):
        get_rule("nope")
