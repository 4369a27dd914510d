"""The synthetic-data chapter's measurements: what synthetic images from a (privately) trained prior are worth
(utility, fidelity), what they give away (memorisation, membership inference), and what the prior still does for
reconstruction.

* utility: a small lesion classifier trained on synthetic images, tested on real held-out private images, against
  one trained on the real private images (the train-on-synthetic, test-on-real protocol of Esteban et al. 2017);
* fidelity: Fréchet distance and k-NN precision / recall (Kynkäänniemi et al. 2019) on the features of a classifier
  trained on real images of this domain (Inception features of 64-px grey phantoms would measure natural-image
  statistics, not haemorrhages);
* memorisation: each synthetic image's nearest neighbour among the private training images against its nearest
  among as many held-out private images (Carlini et al. 2023); a loss-threshold membership-inference attack
  (Yeom et al. 2018) on the denoising loss at fixed noise draws, its ROC AUC with a bootstrap interval.

This module owns these measures and the chapter's checkpoints; the reconstruction row is tuned and tested by the
protocol (:mod:`studies.protocol`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn

from recon.training.losses import EDMLoss


class LesionClassifier(nn.Module):
    """Four 3x3 conv blocks (GroupNorm, SiLU, 2x2 max-pool), a global max-pool (a lesion is small and anywhere) and
    a linear read-out of the ``4 width`` features: logit of "haemorrhage"."""

    def __init__(self, width: int = 16):
        super().__init__()
        chans, layers = [1, width, 2 * width, 4 * width, 4 * width], []
        for c_in, c_out in itertools.pairwise(chans):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(chans[-1], 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, *, epochs: int = 12, batch: int = 64,
                     lr: float = 2e-3, seed: int = 0) -> LesionClassifier:
    """A :class:`LesionClassifier` trained with Adam and the logistic loss, random left-right flips, seeded."""
    if len(torch.unique(labels)) < 2:
        raise ValueError("the classifier needs images of both classes; these labels hold one.")
    batch = min(batch, len(images))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LesionClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * (len(images) // batch))
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images) - batch + 1, batch):
            idx = order[start:start + batch]
            x = images[idx]
            flip = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(flip.reshape(-1, 1, 1, 1), x.flip(-1), x)
            loss = nn.functional.binary_cross_entropy_with_logits(model(x), labels[idx].float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: LesionClassifier, images: torch.Tensor, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, features)`` of ``images``."""
    probs, feats = [], []
    for start in range(0, len(images), batch):
        f = model.features(images[start:start + batch])
        feats.append(f)
        probs.append(torch.sigmoid(model.head(f).squeeze(1)))
    return torch.cat(probs).numpy(), torch.cat(feats).numpy().astype(np.float64)


def classifier_scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy at 0.5, ROC AUC, and the per-image correctness and probability (for paired comparisons)."""
    correct = ((probs > 0.5) == labels.astype(bool)).astype(float)
    return {"accuracy": float(correct.mean()), "auc": float(roc_auc_score(labels, probs)),
            "correct": correct.tolist(), "probs": [round(float(p), 5) for p in probs]}


def auc_ratio(probs_a, probs_b, labels, *, n_resamples: int = 2000, seed: int = 0) -> dict:
    """``AUC(a) / AUC(b)`` on the same test images with a paired percentile-bootstrap 95 % interval (images
    resampled jointly)."""
    probs_a, probs_b, labels = (np.asarray(v) for v in (probs_a, probs_b, labels))
    rng, ratios = np.random.default_rng(seed), []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() != labels[idx].max():
            ratios.append(roc_auc_score(labels[idx], probs_a[idx]) / roc_auc_score(labels[idx], probs_b[idx]))
    point = roc_auc_score(labels, probs_a) / roc_auc_score(labels, probs_b)
    return {"ratio": float(point), "low": float(np.percentile(ratios, 2.5)), "high": float(np.percentile(ratios, 97.5))}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula, Heusel et al. 2017)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def _kth_radius(feats: torch.Tensor, k: int) -> torch.Tensor:
    return torch.cdist(feats, feats).kthvalue(k + 1, dim=1).values  # k+1: the point itself is at distance 0


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Improved precision (share of synthetic features inside the union of the real ones' k-NN balls) and recall (the
    converse), Kynkäänniemi et al. 2019."""
    real_t, fake_t = torch.as_tensor(real), torch.as_tensor(fake)
    cross = torch.cdist(fake_t, real_t)
    precision = (cross <= _kth_radius(real_t, k)[None]).any(1).double().mean()
    recall = (cross.T <= _kth_radius(fake_t, k)[None]).any(1).double().mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}


def nearest(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-space (RMS) distance from each query image to its nearest image in ``pool``, and that image's index."""
    flat_pool = pool.flatten(1).double()
    dists, idxs = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start:start + chunk].flatten(1).double(), flat_pool) / flat_pool.shape[1] ** 0.5
        best = d.min(1)
        dists.append(best.values)
        idxs.append(best.indices)
    return torch.cat(dists), torch.cat(idxs)


def memorisation(synthetic: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor, show: int = 6) -> dict:
    """Nearest-neighbour distances of synthetic images to the training images and to as many held-out images (each
    also mirrored): with no memorisation a synthetic image is as likely to lie nearer a held-out image as a training
    one (share 0.5)."""
    if len(train) != len(heldout):
        raise ValueError(f"compare against equally many training and held-out images; got {len(train)}, {len(heldout)}.")
    # Training flipped images left-right at random, so a copy may come out mirrored: both pools hold both versions.
    d_train, i_train = nearest(synthetic, torch.cat([train, train.flip(-1)]))
    i_train = i_train % len(train)
    d_held, _ = nearest(synthetic, torch.cat([heldout, heldout.flip(-1)]))
    closer = (d_train < d_held).double().numpy()
    order = torch.argsort(d_train)[:show]
    ratio = (d_train / d_held).numpy()
    return {"closer_to_train": float(closer.mean()), "closer_to_train_se": float(closer.std() / len(closer) ** 0.5),
            "ratio_median": float(np.median(ratio)), "ratio_p01": float(np.percentile(ratio, 1)),
            "d_train_median": float(d_train.median()), "d_heldout_median": float(d_held.median()),
            "closest": [[int(s), int(i_train[s]), float(d_train[s]), float(d_held[s])] for s in order]}


@torch.no_grad()
def denoising_losses(prior, images: torch.Tensor, labels: torch.Tensor | None, *, sigmas=(0.02, 0.05, 0.1, 0.2),
                     draws: int = 2, seed: int = 0, batch: int = 256) -> np.ndarray:
    """Each image's EDM denoising loss averaged over ``sigmas`` x ``draws`` noise draws; draw ``j`` of image ``i``
    depends only on ``(seed, j, i)`` so members and non-members face the same kind of noise."""
    loss, total = EDMLoss(), torch.zeros(len(images), dtype=torch.float64)
    device = next(prior.parameters()).device
    for j in range(draws):
        g = torch.Generator().manual_seed(seed * 1000 + j)
        noise = torch.randn(images.shape, generator=g)
        for sigma in sigmas:
            for start in range(0, len(images), batch):
                sl = slice(start, start + batch)
                x, z = images[sl].to(device), noise[sl].to(device)
                s = torch.full((len(x),), float(sigma), device=device)
                y = None if labels is None else labels[sl].to(device)
                total[sl] += loss.per_example(prior, x, s, z, y).double().cpu()
    return (total / (draws * len(sigmas))).numpy()


def membership_audit(prior, members: tuple, nonmembers: tuple, *, seed: int) -> dict:
    """The loss-threshold attack (:func:`membership_inference`) on ``prior``'s denoising losses of ``members`` and
    ``nonmembers`` (each ``(images, labels)``), with the losses themselves."""
    losses = [denoising_losses(prior, *images, seed=seed) for images in (members, nonmembers)]
    return {**membership_inference(*losses, seed=seed), "losses": [[round(float(v), 6) for v in loss] for loss in losses]}


def membership_inference(member_loss: np.ndarray, nonmember_loss: np.ndarray, *, n_resamples: int = 2000,
                         seed: int = 0) -> dict:
    """The loss-threshold attack: "member" when the loss is low. ROC AUC with a percentile-bootstrap 95 % interval
    (members and non-members resampled), and the true-positive rates at 1 % and 0.1 % false positives (the low
    false-positive end that matters for an individual, Carlini et al. 2022; with 1,000 non-members, 0.1 % is one)."""
    scores = np.concatenate([-member_loss, -nonmember_loss])
    truth = np.concatenate([np.ones(len(member_loss)), np.zeros(len(nonmember_loss))])
    rng, aucs = np.random.default_rng(seed), []
    for _ in range(n_resamples):
        m = rng.integers(0, len(member_loss), len(member_loss))
        n = rng.integers(0, len(nonmember_loss), len(nonmember_loss))
        aucs.append(roc_auc_score(truth, np.concatenate([-member_loss[m], -nonmember_loss[n]])))
    fpr, tpr, _ = roc_curve(truth, scores)
    return {"auc": float(roc_auc_score(truth, scores)), "low": float(np.percentile(aucs, 2.5)),
            "high": float(np.percentile(aucs, 97.5)), "tpr_at_1pct_fpr": float(np.interp(0.01, fpr, tpr)),
            "tpr_at_0.1pct_fpr": float(np.interp(0.001, fpr, tpr)),
            "member_loss_mean": float(member_loss.mean()), "nonmember_loss_mean": float(nonmember_loss.mean())}


def calibrated_membership(member_loss, nonmember_loss, member_reference, nonmember_reference, *,
                          seed: int = 0) -> dict:
    """The difficulty-calibrated attack (Watson et al. 2022): each image's loss under the audited model minus its loss
    under a reference model that never saw the private images, so that images that are simply easy to denoise no
    longer look like members; then :func:`membership_inference` on the differences."""
    arrays = [np.asarray(v, dtype=np.float64) for v in (member_loss, nonmember_loss, member_reference,
                                                        nonmember_reference)]
    if arrays[0].shape != arrays[2].shape or arrays[1].shape != arrays[3].shape:
        raise ValueError("each loss needs its reference loss on the same images, in the same order; got shapes "
                         f"{[a.shape for a in arrays]}.")
    return membership_inference(arrays[0] - arrays[2], arrays[1] - arrays[3], seed=seed)


# The chapter's models: label -> shipped checkpoint (python -m recon.train ..., see each card).
DP_MODELS = {"public only": "head_ct_public", "ε = 1": "head_ct_dp_eps1", "ε = 4": "head_ct_dp_eps4",
             "ε = 10": "head_ct_dp_eps10", "ε = 10, from scratch": "head_ct_dp_eps10_scratch",
             "ε = ∞ (non-private)": "head_ct_private"}


PRIVATE_RUN = ["--data", "head_ct_private", "--n-train", "2048", "--batch", "64", "--steps", "200", "--warmup", "20",
               "--checkpoint-every", "25"]


def dp_commands(device: str | None = None) -> list[tuple[str, list[str]]]:
    """``(checkpoint folder, recon.train arguments)`` of the chapter's priors, in training order: the public prior,
    then each private fine-tuning (ε = 10, non-private, ε = 10 from scratch, 4, 1), then the non-private one five
    times longer, the audits' memorising positive control, DP-SGD at the longer budget at ε = 10, 4, 1 and a repeat
    of each, and a control trained four times longer."""
    dev = ["--device", device] if device else []
    public = ["--init", "checkpoints/head_ct_64_public"]
    longer = [*PRIVATE_RUN[:6], "--steps", "1000", "--warmup", "20", "--checkpoint-every", "100", *public]

    def memorising(steps):
        return ["--data", "head_ct_private", "--n-train", "32", "--batch", "32", "--steps", str(steps), "--warmup", "20",
                "--checkpoint-every", "100", *public, "--precision", "fp32"]

    runs = [("head_ct_64_public", ["--data", "head_ct_public", "--classes", "2", "--base", "16", "--n-train", "4096",
                                   "--steps", "2000"]),
            ("head_ct_64_dp_eps10", [*PRIVATE_RUN, *public, "--dp-epsilon", "10"]),
            ("head_ct_64_private", [*PRIVATE_RUN, *public, "--precision", "fp32"]),  # fp32 like the DP runs
            ("head_ct_64_dp_eps10_scratch", [*PRIVATE_RUN, "--classes", "2", "--base", "16", "--dp-epsilon", "10"]),
            ("head_ct_64_dp_eps4", [*PRIVATE_RUN, *public, "--dp-epsilon", "4"]),
            ("head_ct_64_dp_eps1", [*PRIVATE_RUN, *public, "--dp-epsilon", "1"]),
            # the non-private ceiling of experiment synthetic_cfg: the same fine-tuning, five times longer
            ("head_ct_64_private_long", [*longer, "--precision", "fp32"]),
            # the audits' positive control: fine-tuned for 1,000 passes over 32 private images, to memorise them
            ("head_ct_64_private_memorised", memorising(1000)),
            # DP-SGD at the ceiling's budget (experiment synthetic_dp_long) at ε = 10, 4 and 1, then each ε once
            # more: a repeat draws new Poisson batches and noise from the operating system's entropy (no seed is
            # recorded), so it is the same command into another folder
            *[(f"head_ct_64_dp_eps{eps}_long{run}", [*longer, "--dp-epsilon", eps])
              for run in ("", "_run2") for eps in ("10", "4", "1")],
            # a stronger positive control: four times as many passes over the same 32 images
            ("head_ct_64_private_memorised_4k", memorising(4000))]
    return [(f"checkpoints/{name}", [*args, *dev, "--out", f"checkpoints/{name}"]) for name, args in runs]


def check_members(name: str, n_private: int, seed: int) -> None:
    """The membership tests need the images a prior was fine-tuned on: refuse a mismatch with its card."""
    from recon.models.checkpoints import load_card

    config = load_card(name)["config"]
    if config["data"] == "head_ct_private" and (config["n_train"], config["seed"]) != (n_private, seed):
        raise ValueError(f"{name} was trained on {config['n_train']} private images of seed {config['seed']}; run "
                         f"the study with n_private={config['n_train']}, seed={config['seed']}.")


def private_sets(n_private: int, n_test: int, seed: int = 0) -> dict:
    """The hospital's images: its training set (what the priors were fine-tuned on), as many held-out images (the
    non-members) and a test set, with labels."""
    from recon.data.hospital import private_heads

    return {split: private_heads(n, 64, split, seed)
            for split, n in (("train", n_private), ("val", n_private), ("test", n_test))}


def real_reference(sets: dict, n_synthetic: int, *, seed: int) -> tuple[dict, dict]:
    """The classifier trained on the real private images, the reference of every comparison: ``(real, summary)``,
    ``real`` what :func:`utility_and_fidelity` needs, ``summary`` its scores and the held-out floor of the
    fidelity measures (held-out real images against the test images, at the synthetic sets' size)."""
    model = train_classifier(*sets["train"], seed=seed)
    probs, test_features = predict(model, sets["test"][0])
    _, val_features = predict(model, sets["val"][0][:n_synthetic])
    summary = {"classifier": classifier_scores(probs, sets["test"][1].numpy()),
               "fd_heldout": frechet_distance(val_features, test_features),
               **precision_recall(test_features, val_features)}
    return {"model": model, "probs": probs, "test_features": test_features}, summary


SAMPLE_SEED = 10**6  # a study's synthetic sets draw their noise from seed + SAMPLE_SEED on, clear of its data seeds


def card_summary(name: str) -> dict:
    """What a results file keeps of a prior's card: the command that trains it, where, and how long it took."""
    from recon.models.checkpoints import load_card

    card = load_card(name)
    return {k: card.get(k) for k in ("command", "hardware", "wall_time_s")}


def synthetic_set(prior, n: int, *, steps: int, seed: int, guidance: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled synthetic images, half of each class: class ``c`` from seeds ``seed + c n`` on, with
    classifier-free guidance weight ``guidance`` (0: the conditional denoiser alone)."""
    from recon.synthesis import sample

    half = n // 2
    images = [sample(prior, half, seed=seed + c * n, label=c, guidance=guidance, steps=steps, progress=False)
              for c in (0, 1)]
    return torch.cat(images), torch.cat([torch.full((half,), c, dtype=torch.int64) for c in (0, 1)])


def regenerated(prior, label: int, index: int, *, n: int, seed: int, steps: int, guidance: float = 0.0) -> np.ndarray:
    """Image ``index`` of class ``label`` in a study's synthetic set of ``n`` images (:func:`synthetic_set` from
    ``seed + SAMPLE_SEED``), sampled alone: sampling is independent of the batch, so it is that image."""
    from recon.synthesis import sample

    return sample(prior, 1, seed=seed + SAMPLE_SEED + label * n + index, label=label, guidance=guidance, steps=steps,
                  progress=False)[0, 0].numpy()


def regeneration_gap(prior, stored, key: Callable[[int], str], options: dict, run: dict) -> dict[str, float]:
    """The live check of a study's stored samples: per class, the RMS difference between the first image at
    ``run``'s setting (guidance, steps) regenerated by :func:`regenerated` and the stored one (``stored[key(c)][0]``);
    ``options`` are the study's (``n_synthetic``, ``seed``)."""
    gaps = {}
    for c in (0, 1):
        live = regenerated(prior, c, 0, n=options["n_synthetic"], seed=options["seed"], steps=run["steps"],
                           guidance=run["guidance"])
        gaps[f"class {c}"] = float(np.sqrt(np.mean((live - stored[key(c)][0].astype(np.float32)) ** 2)))
    return gaps


def shown(images: torch.Tensor, show: int) -> dict[int, np.ndarray]:
    """The first ``show`` images of each class of a synthetic set laid out half per class, as float16 arrays."""
    half = len(images) // 2
    return {c: images[c * half:c * half + show, 0].numpy().astype(np.float16) for c in (0, 1)}


def label_fidelity(real_model: LesionClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Does a synthetic image carry its label? Per class, the share of images the classifier trained on real images
    calls "haemorrhage" (at probability 0.5), and their mean probability."""
    probs, _ = predict(real_model, images)
    labels = labels.numpy()
    from recon.data.hospital import CLASSES

    return {CLASSES[c]: {"flagged": float((probs[labels == c] > 0.5).mean()),
                            "mean_prob": float(probs[labels == c].mean())} for c in (0, 1)}


def label_separation(run: dict) -> float:
    """How well a synthetic set carries its label: the share of its "haemorrhage" images the real-data classifier
    flags minus the share of its "no haemorrhage" images it flags (1: every image carries its label; 0: none)."""
    from recon.data.hospital import CLASSES

    found = run["label_fidelity"]
    return found[CLASSES[1]]["flagged"] - found[CLASSES[0]]["flagged"]


def pick_guidance(runs: list[dict], by: str = "validation") -> dict:
    """The run (guidance weight, sampler length) a study would release. ``by="validation"``: the highest AUC of the
    synthetic-trained classifier on the private *validation* images (to three decimals); ``by="label"``: the images
    that carry their label best to the real-data classifier (:func:`label_separation`). Ties go to fewer network
    evaluations. Neither rule looks at the test images that score utility."""
    if by == "validation":
        missing = [r["guidance"] for r in runs if "validation" not in r]
        if missing:
            raise ValueError(f"runs at w = {missing} hold no validation scores (results from before they were "
                             f"recorded); rerun their study, or pick with by='label'.")
        score = lambda r: r["validation"]["auc"]
    elif by == "label":
        score = label_separation
    else:
        raise ValueError(f"unknown rule {by!r}; choose 'validation' or 'label'.")
    return max(runs, key=lambda r: (round(score(r), 3), -r["nfe_per_image"]))


def guided_run(model, guidance: float, steps: int, *, n_synthetic: int, sets: dict, real: dict,
               seed: int) -> tuple[dict, torch.Tensor]:
    """One synthetic set of ``model`` at classifier-free guidance weight ``guidance`` and ``steps`` Heun steps:
    ``(result, images)``, the result its label fidelity and its utility and fidelity on the test images."""
    images, labels = synthetic_set(model, n_synthetic, steps=steps, seed=seed + SAMPLE_SEED, guidance=guidance)
    result = {"guidance": guidance, "steps": steps, "nfe_per_image": (2 * steps - 1) * (2 if guidance > 0 else 1),
              "label_fidelity": label_fidelity(real["model"], images, labels),
              **utility_and_fidelity(images, labels, sets, real, seed=seed)}
    print(f"  w = {guidance:g}, {steps} steps: AUC {result['classifier']['auc']:.3f} "
          f"(ratio {result['auc_ratio_to_real']['ratio']:.3f}), flagged "
          f"{result['label_fidelity']['no haemorrhage']['flagged']:.2f} / "
          f"{result['label_fidelity']['haemorrhage']['flagged']:.2f}", flush=True)
    return result, images


def utility_and_fidelity(images, labels, sets: dict, real: dict, *, seed: int) -> dict:
    """Train-on-synthetic, test-on-real (and the same classifier's AUC on the private validation images, for choosing
    a setting), and the synthetic features against the real test features."""
    classifier = train_classifier(images, labels, seed=seed)
    probs, _ = predict(classifier, sets["test"][0])
    val_probs, _ = predict(classifier, sets["val"][0])
    _, feats = predict(real["model"], images)
    y_test = sets["test"][1].numpy()
    return {"classifier": classifier_scores(probs, y_test),
            "validation": {"auc": float(roc_auc_score(sets["val"][1].numpy(), val_probs))},
            "auc_ratio_to_real": auc_ratio(probs, real["probs"], y_test, seed=seed),
            "fd": frechet_distance(feats, real["test_features"]),
            **precision_recall(real["test_features"], feats)}


def reconstruction(prior, *, nfe: int, n_images: int, n_val: int, n_trials: int, seed: int, device="cpu") -> dict:
    """The prior (unconditional entry) in Song et al.'s proximal method at CT 16 views, off-grid test images of the
    private kind, λ tuned on validation images by the protocol."""
    from studies import protocol
    from studies.shift_study import Shift, tune_lambda

    task = Shift("ct:16", "head_ct", "views", 16).task(seed)
    tuned = tune_lambda(task, prior, nfe=nfe, n_val=n_val, n_trials=n_trials, seed=seed, device=device)
    data = protocol.measured(task, n_images, seed)
    return {"tuned": tuned, "row": protocol.reconstruct_row(data, protocol.Choice.tuned(tuned, prior), seed=seed,
                                                            device=device)[1]}
