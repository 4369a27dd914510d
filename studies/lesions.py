"""Lesion fidelity: does a reconstruction keep the phantom's lesions, and does it invent lesions that are not there?
The first question a radiologist asks of a generative prior, which PSNR does not answer.

Every head-CT test phantom is a continuous description whose lesions can be removed (:mod:`recon.data.phantoms`), so
the lesion-free head is known exactly, and so is each lesion's footprint: the head with that lesion alone minus the
lesion-free head (all rendered on the fine grid and averaged to the reconstruction grid, as
:func:`recon.data.fine_and_truth` does). Lesions may overlap; the truth's deviation from the lesion-free head over a
lesion's core is what a reconstruction should keep. Per lesion:

* **contrast recovered**: the mean over the lesion's core (where its footprint is at least half its peak) of the
  reconstruction minus the lesion-free head, over the same mean for the truth (1: all of it; 0: erased);
* **missed**: the peak response of one detector (below) to the reconstruction minus the lesion-free head, over the
  lesion's core and with the lesion's sign, falls under the detector's threshold.

And per image, **invented** lesions: connected regions of the brain (``INSIDE`` pixels in from its edges, where an
edge's blur is not a lesion) where the detector's response to the reconstruction's error (reconstruction minus truth)
exceeds the threshold, away from every true lesion.

The detector is a matched blob filter: a Gaussian of ``BLOB_SIGMA`` pixels (the scale of the phantoms' lesions) applied
to a difference image. Its threshold is calibrated on the truth images alone: the ``CALIBRATION`` quantile of the true
lesions' peak responses, so that on the truth it finds ``1 - CALIBRATION`` of the lesions and invents none. It knows
where the lesion-free anatomy is, which a reader does not: it measures fidelity to the truth, not a reader's
detection performance.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage as ndi
import torch

from recon.data.phantoms import head_ct_params, render_head_ct

BLOB_SIGMA = 1.5  # pixels of the reconstruction grid
CALIBRATION = 0.1  # the detector's threshold: this quantile of the true lesions' peak responses
CORE = 0.5  # a lesion's core: where its contribution is at least this fraction of its peak
BRAIN = (0.38, 0.62)  # the lesion-free head's parenchyma levels (grey and white matter), where lesions live
INSIDE = 3  # pixels the brain is eroded by for invented lesions: an edge's error (skull, ventricles) is not a lesion
MARGIN = 2  # pixels around a true lesion's footprint in which a detection is that lesion, not an invented one
FOOTPRINT = 0.1  # a lesion's footprint, for that margin: where it is at least this fraction of its peak
# Synthetic lesions in T1 brain slices (no brain phantom carries lesions): two per slice, of these radii (pixels of the
# reconstruction grid) and contrasts (of the image range, either sign), in the grey and white matter's intensities.
MRI_LESIONS, MRI_RADIUS, MRI_CONTRAST = 2, (1.5, 3.0), (0.15, 0.3)
MRI_BRAIN = (0.45, 0.95)  # grey and white matter of the template's T1 slices (CSF is darker, background 0)
SCALP = 5  # pixels in from the head's outline before the brain starts


@dataclasses.dataclass
class LesionSet:
    """Test phantoms and their lesions: ``truth`` ``(n, 1, H, W)``, the lesion-free heads ``bare``, and per image the
    footprint of each of its lesions alone (``footprints[i][k]``, ``(H, W)``, signed)."""

    truth: torch.Tensor
    bare: torch.Tensor
    footprints: list[list[np.ndarray]]
    parenchyma: np.ndarray | None = None  # (n, H, W) bool where lesions may lie; None: the head-CT levels BRAIN

    def deviation(self, i: int, image: np.ndarray) -> np.ndarray:
        """``image`` minus image ``i``'s lesion-free head."""
        return np.asarray(image, dtype=np.float64) - self.bare[i, 0].numpy()

    def core(self, i: int, k: int) -> np.ndarray:
        part = np.abs(self.footprints[i][k])
        return part >= CORE * part.max()

    def sign(self, i: int, k: int) -> float:
        """+1 for a hyperdense lesion, -1 for a hypodense one."""
        return float(np.sign(self.footprints[i][k][self.core(i, k)].mean()))

    def brain(self, i: int) -> np.ndarray:
        """Image ``i``'s parenchyma, ``INSIDE`` pixels in from the skull, the ventricles and any other tissue."""
        bare = self.bare[i, 0].numpy()
        tissue = (bare > BRAIN[0]) & (bare < BRAIN[1]) if self.parenchyma is None else self.parenchyma[i]
        return ndi.binary_erosion(tissue, iterations=INSIDE)

    def near_lesions(self, i: int) -> np.ndarray:
        """Pixels within ``MARGIN`` of any lesion's footprint in image ``i``."""
        near = np.zeros(self.bare.shape[-2:], dtype=bool)
        for part in self.footprints[i]:
            near |= np.abs(part) >= FOOTPRINT * np.abs(part).max()
        return ndi.binary_dilation(near, iterations=MARGIN) if near.any() else near


def _coarse(head, size: int, factor: int) -> np.ndarray:
    fine = render_head_ct(head, size * factor)
    return fine.reshape(size, factor, size, factor).mean(axis=(1, 3))


def lesion_set(n: int, size: int = 64, split: str = "test", seed: int = 0, factor: int = 4) -> LesionSet:
    """The first ``n`` phantoms of ``split`` (the images :func:`recon.data.fine_and_truth` gives for ``head_ct``), their
    lesion-free heads and each lesion's footprint."""
    truth, bare, footprints = [], [], []
    for i in range(n):
        head = head_ct_params(split, seed, i)
        truth.append(_coarse(head, size, factor))
        bare.append(_coarse(dataclasses.replace(head, lesions=()), size, factor))
        footprints.append([_coarse(dataclasses.replace(head, lesions=(lesion,)), size, factor) - bare[-1]
                           for lesion in head.lesions])
    stack = lambda images: torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
    return LesionSet(stack(truth), stack(bare), footprints)


def brain_parenchyma(image: np.ndarray) -> np.ndarray:
    """A T1 brain slice's grey and white matter: ``MRI_BRAIN`` intensities inside the head, ``SCALP`` pixels in from
    its outline (the bright scalp and fat lie there, not in the brain)."""
    head = ndi.binary_fill_holes(image > 0.1)
    return ndi.binary_erosion(head, iterations=SCALP) & (image > MRI_BRAIN[0]) & (image < MRI_BRAIN[1])


def insert_lesions(fine: np.ndarray, factor: int, rng: np.random.Generator, count: int = MRI_LESIONS) -> list:
    """``count`` synthetic lesions for a fine T1 slice ``(f H, f W)``: discs of ``MRI_RADIUS`` pixels of the
    reconstruction grid, centred in its parenchyma at least two diameters apart, with a soft edge (one pixel of the
    reconstruction grid) and a contrast of ``MRI_CONTRAST`` of either sign (hypointense, as a T1 "black hole", or
    hyperintense, as an enhancing lesion). Returns each lesion as a fine image to add."""
    size = fine.shape[0] // factor
    allowed = brain_parenchyma(fine.reshape(size, factor, size, factor).mean(axis=(1, 3)))
    allowed = ndi.binary_erosion(allowed, iterations=int(np.ceil(MRI_RADIUS[1])))
    yy, xx = np.mgrid[:fine.shape[0], :fine.shape[1]] / factor  # fine pixel centres, in coarse pixels
    out, centres = [], []
    for y, x in rng.permutation(np.argwhere(allowed)):
        if len(out) == count:
            break
        radius = rng.uniform(*MRI_RADIUS)
        if any(np.hypot(y - cy, x - cx) < 2 * (radius + r) for cy, cx, r in centres):
            continue
        distance = np.hypot(yy - (y + 0.5), xx - (x + 0.5))
        amplitude = rng.choice([-1.0, 1.0]) * rng.uniform(*MRI_CONTRAST)
        out.append(amplitude * np.clip(radius - distance + 0.5, 0.0, 1.0))
        centres.append((y, x, radius))
    return out


def mri_lesion_set(n: int, size: int = 64, split: str = "test", seed: int = 0, factor: int = 4) -> tuple:
    """``(LesionSet, fine)``: the first ``n`` brain slices of ``split`` (:func:`recon.data.fine_and_truth`'s), each with
    :func:`insert_lesions` added to its fine image before it is averaged to the grid (so the lesions are measured off
    the grid, as the anatomy is), clipped to the image range; ``fine`` is what to measure. The lesions' positions,
    sizes and signs come from a generator seeded with ``seed``."""
    from recon.data.offgrid import fine_and_truth

    rng = np.random.default_rng([seed, 1])
    plain, fine = fine_and_truth("brain", n, size, split, seed, factor)
    coarse = lambda image: image.reshape(size, factor, size, factor).mean(axis=(1, 3))
    truth, bare, footprints, tissue, lesioned = [], [], [], [], []
    for image, slice_ in zip(fine[:, 0].numpy().astype(np.float64), plain[:, 0].numpy()):
        parts = insert_lesions(image, factor, rng)
        lesioned.append(np.clip(image + sum(parts), 0.0, 1.0))
        truth.append(coarse(lesioned[-1]))
        bare.append(slice_)
        footprints.append([coarse(np.clip(image + part, 0.0, 1.0)) - bare[-1] for part in parts])
        tissue.append(brain_parenchyma(bare[-1]))
    stack = lambda images: torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
    return LesionSet(stack(truth), stack(bare), footprints, np.stack(tissue)), stack(lesioned)


def blob(image: np.ndarray) -> np.ndarray:
    """The detector's response: the image smoothed by a Gaussian of ``BLOB_SIGMA`` pixels."""
    return ndi.gaussian_filter(np.asarray(image, dtype=np.float64), BLOB_SIGMA)


def peak(lesions: LesionSet, i: int, k: int, image: np.ndarray) -> float:
    """Lesion ``k``'s peak response in ``image`` minus the lesion-free head, signed so that a lesion present gives a
    positive value whether it is hyper- or hypodense."""
    return float((lesions.sign(i, k) * blob(lesions.deviation(i, image)))[lesions.core(i, k)].max())


def threshold(lesions: LesionSet) -> float:
    """The detector's threshold, from the truth alone (module docstring)."""
    peaks = [peak(lesions, i, k, lesions.truth[i, 0].numpy()) for i in range(len(lesions.footprints))
             for k in range(len(lesions.footprints[i]))]
    if not peaks:
        raise ValueError("these phantoms hold no lesion; take more images to calibrate the detector.")
    return float(np.quantile(peaks, CALIBRATION))


def invented(lesions: LesionSet, i: int, image: np.ndarray, tau: float) -> int:
    """Regions of the brain, away from every true lesion, where the error's response exceeds ``tau``."""
    response = np.abs(blob(image - lesions.truth[i, 0].numpy()))
    return int(ndi.label((response > tau) & lesions.brain(i) & ~lesions.near_lesions(i))[1])


def fidelity(lesions: LesionSet, x: torch.Tensor, tau: float | None = None) -> dict:
    """Lesion fidelity of reconstructions ``x`` ``(n, 1, H, W)`` of ``lesions.truth``: per lesion (``image``, contrast
    recovered, missed) and per image the number of invented lesions, with the threshold used."""
    tau = threshold(lesions) if tau is None else tau
    found, invented_counts = [], []
    for i in range(len(lesions.footprints)):
        image = x[i, 0].detach().cpu().numpy().astype(np.float64)
        truth = lesions.deviation(i, lesions.truth[i, 0].numpy())
        for k in range(len(lesions.footprints[i])):
            core = lesions.core(i, k)
            recovered = lesions.deviation(i, image)[core].mean() / truth[core].mean()
            found.append({"image": i, "contrast": float(recovered), "missed": peak(lesions, i, k, image) < tau})
        invented_counts.append(invented(lesions, i, image, tau))
    return {"threshold": tau, "lesions": found, "invented": invented_counts}


def summary(result: dict) -> dict:
    """Per method: contrast recovered as the median and quartiles over lesions (a lesion that overlaps another of
    opposite sign keeps almost no contrast in the truth, and its ratio is unbounded, so no mean), the share of lesions
    keeping at least half their contrast, lesions missed (count and share), invented lesions (total and images with
    any)."""
    lesions = result["lesions"]
    contrast = np.array([f["contrast"] for f in lesions])
    low, median, high = np.quantile(contrast, [0.25, 0.5, 0.75])
    return {"lesions": len(lesions), "contrast": float(median), "contrast_quartiles": [float(low), float(high)],
            "kept_half": float(np.mean(contrast >= 0.5)),
            "missed": sum(f["missed"] for f in lesions), "missed_share": float(np.mean([f["missed"] for f in lesions])),
            "invented": sum(result["invented"]), "images_with_invented": sum(c > 0 for c in result["invented"])}


def compare(a: dict, b: dict, *, seed: int = 0) -> dict:
    """Method ``a`` against method ``b`` on the same lesions and images (two :func:`fidelity` results): lesions only
    one of them misses, with the exact two-sided McNemar p-value (a binomial test on those discordant lesions; lesions
    of one image are not independent, so read it as a guide), and the paired difference of invented lesions per
    image with its bootstrap interval over images."""
    from scipy.stats import binomtest

    from studies.statistics import paired_difference

    if [f["image"] for f in a["lesions"]] != [f["image"] for f in b["lesions"]]:
        raise ValueError("the two results are not on the same lesions; compare rows of one task.")
    only_a = sum(x["missed"] and not y["missed"] for x, y in zip(a["lesions"], b["lesions"]))
    only_b = sum(y["missed"] and not x["missed"] for x, y in zip(a["lesions"], b["lesions"]))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"missed_only_a": only_a, "missed_only_b": only_b, "missed_p": float(p),
            "invented": paired_difference(a["invented"], b["invented"], seed=seed)}
