"""The shipped data: deterministic, in range, split-disjoint, and with clear errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from recon.data import brain_slices, ct_small, head_ct_phantoms, shepp_logan
from recon.data.brain import GAP_MM, SLABS

LOADERS = [head_ct_phantoms, brain_slices]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_deterministic_in_range_and_prefix_stable(loader):
    a = loader(4, 32, "test", 3)
    assert a.shape == (4, 1, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, loader(4, 32, "test", 3))
    assert torch.equal(a[:2], loader(2, 32, "test", 3))
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, loader(4, 32, "test", 4))


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_splits_do_not_share_images(loader):
    train, test = loader(8, 32, "train", 0), loader(8, 32, "test", 0)
    distance = torch.cdist(train.flatten(1), test.flatten(1))
    assert float(distance.min()) > 0.5


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_bad_requests(loader):
    with pytest.raises(ValueError, match="unknown split"):
        loader(2, 32, "validation", 0)
    with pytest.raises(ValueError, match="size must be >= 16"):
        loader(2, 8, "train", 0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        loader(0, 32, "train", 0)
    with pytest.raises(ValueError, match="seed"):
        loader(2, 32, "train", -1)


def test_head_phantoms_lie_inside_the_ct_field_of_view():
    x = head_ct_phantoms(8, 64, "train", 1)
    yy, xx = torch.meshgrid(torch.arange(64) - 31.5, torch.arange(64) - 31.5, indexing="ij")
    outside = (yy**2 + xx**2) > 31.5**2
    assert float(x[..., outside].abs().max()) == 0.0
    assert float(x[..., (yy**2 + xx**2) > 30.5**2].abs().max()) == 0.0  # and a margin inside the circle


def test_brain_slabs_are_separated_by_the_gap():
    intervals = sorted({iv for slabs in SLABS.values() for iv in slabs})
    assert SLABS["val"] == SLABS["test"]  # validation draws from the test distribution, not an easier slab
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start - end >= GAP_MM
    # the in-distribution test slab has training slabs on both sides; the shift slab lies beyond the nearest ones
    (lo, hi), = SLABS["test"]
    train = SLABS["train"]
    assert any(end <= lo for _, end in train) and any(start >= hi for start, _ in train)
    (lo, hi), = SLABS["test_shift"]
    assert not any(start <= lo and hi <= end for start, end in train)
    with pytest.raises(ValueError, match="unknown split 'test_shift'"):
        head_ct_phantoms(1, 32, "test_shift", 0)


def test_out_of_distribution_images():
    for image in (shepp_logan(48), ct_small(48)):
        assert image.shape == (1, 1, 48, 48)
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0.05
    with pytest.raises(ValueError, match="high > low"):
        ct_small(32, window=(100, 0))
