"""Lesion fidelity (studies.lesions): the truth keeps every lesion it is calibrated to find and invents none; erasing
the lesions loses all their contrast; blur loses some; a blob added to the brain is an invented lesion. The same for
the synthetic lesions added to brain slices."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from recon.data.offgrid import fine_and_truth
from studies.lesions import CALIBRATION, LesionSet, compare, fidelity, lesion_set, summary, threshold


@pytest.fixture(scope="module")
def lesions():
    return lesion_set(10)


def test_the_truth_is_the_protocols_and_keeps_its_lesions(lesions):
    truth, _ = fine_and_truth("head_ct", 10, 64, "test", 0)
    assert torch.equal(truth, lesions.truth)
    tau = threshold(lesions)
    kept = summary(fidelity(lesions, lesions.truth, tau))
    assert kept["lesions"] >= 10 and kept["contrast"] == pytest.approx(1.0) and kept["invented"] == 0
    assert kept["missed_share"] <= CALIBRATION + 2 / kept["lesions"]  # the detector's calibration, by construction


def test_erased_and_blurred_lesions_lose_their_contrast(lesions):
    tau = threshold(lesions)
    erased = summary(fidelity(lesions, lesions.bare, tau))
    assert erased["contrast"] == pytest.approx(0.0, abs=1e-6) and erased["missed_share"] == 1.0
    assert erased["invented"] == 0  # the error sits on the true lesions, not elsewhere
    blurred = summary(fidelity(lesions, torch.from_numpy(ndi.gaussian_filter(lesions.truth.numpy(), (0, 0, 1, 1))),
                               tau))
    assert 0.3 < blurred["contrast"] < 0.9 and blurred["invented"] == 0  # blurred edges are not lesions
    assert erased["kept_half"] == 0.0 and summary(fidelity(lesions, lesions.truth, tau))["kept_half"] == 1.0
    versus = compare(fidelity(lesions, lesions.bare, tau), fidelity(lesions, lesions.truth, tau))
    assert versus["missed_only_b"] == 0 and versus["missed_only_a"] == erased["missed"] - kept_missed(lesions, tau)
    assert versus["missed_p"] < 0.01 and versus["invented"].verdict == "tie"  # neither invents any


def kept_missed(lesions, tau):
    return summary(fidelity(lesions, lesions.truth, tau))["missed"]


def test_a_blob_in_the_brain_is_an_invented_lesion(lesions):
    i = next(i for i in range(10) if lesions.brain(i).any())
    free = lesions.brain(i) & ~lesions.near_lesions(i)
    y, x = (int(np.median(v)) for v in np.nonzero(free))
    y, x = min(zip(*np.nonzero(free)), key=lambda p: (p[0] - y) ** 2 + (p[1] - x) ** 2)
    grid = np.arange(64)
    bump = 0.15 * np.exp(-((grid[:, None] - y) ** 2 + (grid[None, :] - x) ** 2) / (2 * 2.0**2))
    image = lesions.truth.clone()
    image[i, 0] += torch.from_numpy(bump).float()
    result = fidelity(lesions, image)
    assert result["invented"][i] == 1 and sum(result["invented"]) == 1
    with pytest.raises(ValueError, match="no lesion"):
        threshold(LesionSet(lesions.truth[:1], lesions.bare[:1], [[]]))


@pytest.fixture(scope="module")
def brain_lesions():
    from studies.lesions import mri_lesion_set

    return mri_lesion_set(6)


def test_synthetic_brain_lesions_lie_in_the_parenchyma_and_are_measured_off_the_grid(brain_lesions):
    from studies.lesions import MRI_LESIONS, mri_lesion_set

    lesions, fine = brain_lesions
    truth, plain = fine_and_truth("brain", 6)
    assert torch.equal(lesions.bare, truth)  # the protocol's test slices, lesions aside
    assert all(len(parts) == MRI_LESIONS for parts in lesions.footprints)
    for i, parts in enumerate(lesions.footprints):
        for k, part in enumerate(parts):
            assert lesions.parenchyma[i][lesions.core(i, k)].all()  # in grey or white matter, not CSF or background
    assert torch.allclose(fine.reshape(6, 1, 64, 4, 64, 4).mean(dim=(3, 5)), lesions.truth, atol=1e-6)
    assert not torch.equal(fine, plain) and torch.equal(mri_lesion_set(6)[1], fine)  # seeded: the same set again


def test_the_brain_truth_keeps_its_synthetic_lesions_and_erasing_them_misses_all(brain_lesions):
    lesions, _ = brain_lesions
    tau = threshold(lesions)
    kept, erased = summary(fidelity(lesions, lesions.truth, tau)), summary(fidelity(lesions, lesions.bare, tau))
    assert kept["contrast"] == pytest.approx(1.0) and kept["invented"] == 0
    assert kept["missed_share"] <= CALIBRATION + 2 / kept["lesions"]
    assert erased["missed"] == erased["lesions"] and erased["kept_half"] == 0.0 and erased["invented"] == 0


def test_the_mri_lesion_study_runs_the_mri_networks():
    from studies import protocol
    from studies.experiments import _lesion_choices

    task = next(t for t in protocol.tasks() if t.name == "MRI, 8x" and t.noise is None and t.split == "test")
    entry = {"rows": [{"method": "tv", "options": {"weight": 0.01}}]}
    choices = _lesion_choices(task, entry, None, None, 60)
    assert {c.options.get("network") for c in choices.values()} >= {"brain_sup_family", "brain_sup_mri8_equispaced"}
