"""The head simulator as Private Evolution's source (studies.simulator_evolution): candidates keep their class
through every draw and variation, stay inside their lesion model, move less as the step shrinks, repeat under a
seed, and with little vote noise the evolved population's lesions move from the public guess towards the private
images' lesions."""

import dataclasses

import numpy as np
import pytest
import torch

from recon.data.hospital import has_haemorrhage
from recon.data.phantoms import render_head_ct
from studies.private_evolution import Evolution, private_evolution
from studies.simulator_evolution import (
    HOSPITAL_LESIONS,
    PUBLIC_LESIONS,
    SimulatorSource,
    draw_candidate,
    lesion_statistics,
    vary_head,
)


def _inside(head, model):
    for lesion in head.lesions:
        levels = model.hyperdense if lesion.level > 0.5 else model.hypodense
        assert levels[0] <= lesion.level <= levels[1]
        assert all(model.size[0] <= a <= model.size[1] for a in lesion.semi_axes)
        assert model.edge[0] <= lesion.edge <= model.edge[1]


@pytest.mark.parametrize("model", [PUBLIC_LESIONS, None])
def test_draws_and_variations_keep_their_class_and_their_ranges(model):
    for label in (0, 1):
        for i in range(20):
            rng = np.random.default_rng([5, label, i])
            head = draw_candidate(rng, label, model)
            assert has_haemorrhage(head) == bool(label)
            _inside(head, model or HOSPITAL_LESIONS)
            for step in (1.0, 0.3):
                moved = vary_head(head, label, model or HOSPITAL_LESIONS, step, rng)
                assert has_haemorrhage(moved) == bool(label)
                _inside(moved, model or HOSPITAL_LESIONS)
    with pytest.raises(ValueError, match=r"step must lie in \(0, 1\]"):
        vary_head(head, 1, PUBLIC_LESIONS, 0.0, rng)
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        SimulatorSource(2)


def test_a_smaller_step_moves_a_head_less():
    head = draw_candidate(np.random.default_rng(3), 1, PUBLIC_LESIONS)
    image = render_head_ct(head, 32)

    def moved(step):
        return np.mean([np.abs(render_head_ct(vary_head(head, 1, PUBLIC_LESIONS, step, np.random.default_rng(s)), 32)
                               - image).mean() for s in range(12)])

    assert moved(0.1) < 0.5 * moved(1.0)


def test_a_source_repeats_under_its_seeds():
    source = SimulatorSource(1, size=32)
    (a, heads), (b, _) = source.initial(4, 7), source.initial(4, 7)
    assert torch.equal(a, b) and a.shape == (4, 1, 32, 32)
    assert torch.equal(source.vary(heads, 0.25, range(4))[0], source.vary(heads, 0.25, range(4))[0])
    assert not torch.equal(source.initial(4, 8)[0], a)


def test_votes_pull_the_public_guess_towards_the_private_lesions_and_drowned_votes_do_not():
    # Private class-1 heads with several large bleeds; the public guess draws bleeds of 0.02 to 0.25 (mean about 0.12).
    big = dataclasses.replace(HOSPITAL_LESIONS, size=(0.2, 0.25), p_hyperdense=1.0, count=4.0)
    private_heads = [draw_candidate(np.random.default_rng([9, i]), 1, big) for i in range(96)]
    private = torch.from_numpy(np.stack([render_head_ct(h, 32) for h in private_heads])[:, None].astype(np.float32))
    target = lesion_statistics(private_heads)["hyperdense"]["size"]

    def sizes(sigma, threshold):
        rounds = []
        private_evolution(SimulatorSource(1, size=32), private, Evolution(64, (0.5, 0.35, 0.25), sigma, threshold),
                          seed=0, callback=lambda r: rounds.append(lesion_statistics(r["state"])["hyperdense"]["size"]))
        return rounds

    voted, drowned = sizes(0.5, 1.0), sizes(1e4, 1e5)
    assert len(voted) == 4 and voted[0] == drowned[0]  # one vote per round and the final one; the same first draw
    assert abs(voted[-1] - target) < 0.75 * abs(voted[0] - target), (voted, target)
    assert abs(drowned[-1] - drowned[0]) < 0.25 * abs(voted[-1] - voted[0]) + 0.015, (drowned, voted)
