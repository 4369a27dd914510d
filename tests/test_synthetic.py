"""Class-conditional priors, synthetic images on disk, and the synthetic-data study's measurements on cases whose
answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.data.hospital import CLASSES, private_heads, public_heads
from recon.data.phantoms import head_ct_phantoms
from recon.models.denoiser import ClassConditioned, EDMDenoiser
from recon.models.networks import UNet
from studies import synthetic_study as st


def tiny_conditional() -> EDMDenoiser:
    torch.manual_seed(0)
    net = UNet(base=8, mults=(1, 2), emb_dim=16, classes=2)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    prior = EDMDenoiser(net, image_size=16)
    prior.precision = "fp32"
    return prior


def test_private_heads_are_the_books_phantoms_with_labels():
    images, labels = private_heads(12, 32, "val", 0)
    assert torch.equal(images, head_ct_phantoms(12, 32, "val", 0))
    assert set(labels.tolist()) <= {0, 1} and len(CLASSES) == 2
    assert 0 < labels.float().mean() < 1


def test_public_heads_hold_no_lesions_and_differ_from_private_ones():
    public = public_heads(8, 32)
    assert not torch.allclose(public, head_ct_phantoms(8, 32))
    assert public.min() >= 0 and public.max() <= 1


def test_labels_change_the_conditional_denoiser():
    prior, x = tiny_conditional(), torch.rand(2, 1, 16, 16)
    outs = [ClassConditioned(prior, c)(x, 0.5) for c in (0, 1)]
    assert not torch.allclose(outs[0], outs[1])
    torch.testing.assert_close(prior(x, 0.5), prior(x, 0.5, labels=torch.tensor([2, 2])))  # None: the no-label entry
    with pytest.raises(ValueError, match="label"):
        ClassConditioned(prior, 2)
    plain = EDMDenoiser(UNet(base=8, mults=(1, 2), emb_dim=16), image_size=16)
    with pytest.raises(ValueError, match="unconditional"):
        ClassConditioned(plain, 0)


def test_classifier_free_guidance_extrapolates_from_the_unconditional_entry():
    prior, x = tiny_conditional(), torch.rand(3, 1, 16, 16)
    conditional, unconditional = ClassConditioned(prior, 1)(x, 0.5), prior(x, 0.5)
    guided = ClassConditioned(prior, 1, guidance=2.0)
    torch.testing.assert_close(guided(x, 0.5), unconditional + 3.0 * (conditional - unconditional))
    assert guided.nfe_per_call == 2 and ClassConditioned(prior, 1).nfe_per_call == 1
    sigmas = torch.tensor([0.2, 0.5, 1.0])  # per-image levels travel with their images through the doubled batch
    torch.testing.assert_close(guided(x, sigmas)[1:2], guided(x[1:2], 0.5))
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        ClassConditioned(prior, 1, guidance=-1.0)
    with pytest.raises(ValueError, match="pass label="):
        recon.sample(prior, 1, guidance=1.0, steps=2, progress=False)
    a = recon.sample(prior, 2, seed=3, label=1, guidance=1.5, steps=3, progress=False)
    assert not torch.allclose(a, recon.sample(prior, 2, seed=3, label=1, steps=3, progress=False))


def test_sample_writes_images_and_is_independent_of_the_batch(tmp_path):
    prior = tiny_conditional()
    a = recon.sample(prior, 3, seed=5, label=1, steps=3, batch=2, out=tmp_path / "syn", progress=False)
    b = recon.sample(prior, 3, seed=5, label=1, steps=3, batch=3, progress=False)
    torch.testing.assert_close(a, b)
    assert np.load(tmp_path / "syn" / "images.npy").shape == (3, 16, 16)
    assert np.load(tmp_path / "syn" / "labels.npy").tolist() == [1, 1, 1]
    assert len(list((tmp_path / "syn" / "png").glob("*.png"))) == 3


def test_fidelity_measures_on_known_cases():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    assert st.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert st.frechet_distance(a, b + 3) > 30 > st.frechet_distance(a, b)
    same = st.precision_recall(a, b)
    assert same["precision"] > 0.8 and same["recall"] > 0.8
    collapsed = st.precision_recall(a, np.zeros((400, 4)) + 1e-3 * b)  # every sample at the mode: precise, no recall
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2


def test_memorisation_flags_copies_and_not_fresh_draws():
    train, heldout = head_ct_phantoms(32, 16, "train"), head_ct_phantoms(32, 16, "val")
    copies = st.memorisation(train[:10] + 1e-4, train, heldout)
    assert copies["closer_to_train"] == 1 and copies["closest"][0][2] < 1e-3
    fresh = st.memorisation(head_ct_phantoms(40, 16, "test"), train, heldout)
    assert 0.2 < fresh["closer_to_train"] < 0.8


def test_membership_inference_auc():
    rng = np.random.default_rng(0)
    low, high = rng.normal(0, 1, 300), rng.normal(2, 1, 300)
    assert st.membership_inference(low, high)["auc"] > 0.85  # members have lower loss: the attack works
    same = st.membership_inference(low, rng.normal(0, 1, 300))
    assert same["low"] < 0.5 < same["high"]
    # at a low false-positive rate a null attack finds about as many members as it accuses non-members
    assert same["tpr_at_1pct_fpr"] < 0.05 and same["tpr_at_0.1pct_fpr"] <= same["tpr_at_1pct_fpr"]
    memorised = st.membership_inference(rng.normal(-4, 0.5, 300), rng.normal(0, 1, 300))  # members far below
    assert memorised["tpr_at_0.1pct_fpr"] > 0.9


def test_classifier_learns_a_separable_task_and_refuses_one_class():
    images = torch.zeros(128, 1, 32, 32)
    labels = torch.arange(128) % 2
    images[labels == 1, :, 10:14, 10:14] = 1.0  # a bright square marks class 1
    model = st.train_classifier(images, labels, epochs=4, batch=32)
    probs, feats = st.predict(model, images)
    assert st.classifier_scores(probs, labels.numpy())["accuracy"] > 0.95 and feats.shape == (128, 64)
    with pytest.raises(ValueError, match="both classes"):
        st.train_classifier(images, torch.zeros(128, dtype=torch.int64))


def test_label_fidelity_counts_the_images_the_real_classifier_flags_per_class():
    images = torch.zeros(128, 1, 32, 32)
    labels = torch.arange(128) % 2
    images[labels == 1, :, 10:14, 10:14] = 1.0
    model = st.train_classifier(images, labels, epochs=4, batch=32)
    # a synthetic set whose "haemorrhage" half carries the square on 3 of 4 images, and whose other half never does
    synthetic, synthetic_labels = torch.zeros(64, 1, 32, 32), torch.repeat_interleave(torch.tensor([0, 1]), 32)
    synthetic[32:, :, 10:14, 10:14] = 1.0
    synthetic[32::4] = 0.0
    found = st.label_fidelity(model, synthetic, synthetic_labels)
    assert found[CLASSES[0]]["flagged"] == 0.0 and found[CLASSES[1]]["flagged"] == pytest.approx(0.75)
    assert found[CLASSES[1]]["mean_prob"] > found[CLASSES[0]]["mean_prob"]


def test_guidance_by_label_separation_ties_go_to_the_cheaper_run_and_a_rule_needs_its_scores():
    def run(w, nfe, no, yes):
        return {"guidance": w, "nfe_per_image": nfe,
                "label_fidelity": {CLASSES[0]: {"flagged": no}, CLASSES[1]: {"flagged": yes}}}

    runs = [run(0, 35, 0.10, 0.40), run(1, 70, 0.02, 0.80), run(3, 70, 0.0, 0.78)]
    assert st.label_separation(runs[0]) == pytest.approx(0.30)
    assert st.pick_guidance(runs, by="label")["guidance"] == 1
    assert st.pick_guidance([run(0, 35, 0.0, 0.5), run(2, 70, 0.0, 0.5)], by="label")["guidance"] == 0
    with pytest.raises(ValueError, match="hold no validation scores"):
        st.pick_guidance(runs)
    with pytest.raises(ValueError, match="unknown rule"):
        st.pick_guidance(runs, by="test")


def test_guidance_is_picked_on_validation_auc_not_on_test():
    def run(w, nfe, val, test):
        return {"guidance": w, "nfe_per_image": nfe, "validation": {"auc": val}, "classifier": {"auc": test}}

    runs = [run(0, 35, 0.90, 0.70), run(1, 70, 0.85, 0.95), run(3, 70, 0.9001, 0.99)]
    assert st.pick_guidance(runs)["guidance"] == 0  # the test AUC never decides; a tie at 3 decimals goes cheaper
    assert st.pick_guidance(runs[1:])["guidance"] == 3


def test_fine_tuning_starts_unseen_labels_from_the_no_label_entry():
    from recon.cli.train import start_unseen_labels

    net = UNet(base=8, mults=(1, 2), emb_dim=16, classes=2)
    start_unseen_labels(net, "head_ct_public")  # the public set holds label 0 only
    weight = net.label_embed.weight
    torch.testing.assert_close(weight[1], weight[2])
    assert not torch.allclose(weight[0], weight[2])


def test_denoising_losses_are_per_image_and_repeatable():
    prior, images = tiny_conditional(), torch.rand(6, 1, 16, 16)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    a = st.denoising_losses(prior, images, labels, sigmas=(0.05, 0.2), draws=2, batch=4)
    b = st.denoising_losses(prior, images[:3], labels[:3], sigmas=(0.05, 0.2), draws=2, batch=2)
    assert a.shape == (6,) and (a > 0).all()
    np.testing.assert_allclose(a[:3], b, rtol=1e-5)  # image i's draws do not depend on the batch or the set
    c = st.denoising_losses(prior, images, 1 - labels, sigmas=(0.05, 0.2), draws=2, batch=4)
    assert not np.allclose(a, c), "the labels reach the network"


def test_members_must_be_the_priors_training_images(tmp_path):
    import json

    card = {"config": {"data": "head_ct_private", "n_train": 2048, "seed": 0}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "model.safetensors").write_bytes(b"")
    st.check_members(str(tmp_path), 2048, 0)
    with pytest.raises(ValueError, match="n_private=2048"):
        st.check_members(str(tmp_path), 1024, 0)


def test_a_regenerated_image_is_the_study_sets_image_and_stored_samples_are_checked(tmp_path):
    prior = tiny_conditional()
    images, _ = st.synthetic_set(prior, 4, steps=3, seed=7 + st.SAMPLE_SEED, guidance=1.0)
    alone = st.regenerated(prior, 1, 1, n=4, seed=7, steps=3, guidance=1.0)  # class 1, its second image
    np.testing.assert_allclose(alone, images[3, 0].numpy(), atol=1e-4)  # batched arithmetic only
    shown = st.shown(images, 1)
    assert shown[0].dtype == np.float16 and shown[1].shape == (1, 16, 16)
    gaps = st.regeneration_gap(prior, {"w1|class0": shown[0], "w1|class1": shown[1]}, lambda c: f"w1|class{c}",
                               {"n_synthetic": 4, "seed": 7}, {"steps": 3, "guidance": 1.0})
    assert max(gaps.values()) < 1e-2  # float16 storage only
    from studies.experiments import save_samples
    from studies.results import load_samples

    entry = save_samples({"a": shown[0]}, str(tmp_path / "samples.npz"))
    assert load_samples(tmp_path / "result.json", entry)["a"].shape == (1, 16, 16)
    (tmp_path / "samples.npz").write_bytes((tmp_path / "samples.npz").read_bytes() + b"x")
    with pytest.raises(ValueError, match="not the file the study wrote"):
        load_samples(tmp_path / "result.json", entry)


def test_calibration_removes_image_difficulty_from_the_membership_attack():
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0.0, 1.0, 400)  # how hard each image is to denoise, for any model
    member, nonmember = difficulty[:200] - 0.05, difficulty[200:]  # members a little easier under the audited model
    raw = st.membership_inference(member, nonmember)
    calibrated = st.calibrated_membership(member, nonmember, difficulty[:200], difficulty[200:])
    assert raw["auc"] < 0.65 and calibrated["auc"] == 1.0 and calibrated["tpr_at_0.1pct_fpr"] == 1.0
    with pytest.raises(ValueError, match="same images, in the same order"):
        st.calibrated_membership(member, nonmember, difficulty[:100], difficulty[200:])


def test_each_dp_repeat_is_its_runs_command_into_another_folder():
    commands = dict(st.dp_commands())
    assert len(commands) == len(st.dp_commands())  # one folder per run
    for eps in ("10", "4", "1"):
        first, repeat = (commands[f"checkpoints/head_ct_64_dp_eps{eps}_long{run}"] for run in ("", "_run2"))
        assert first[:-2] == repeat[:-2] and first[-2:] != repeat[-2:] and "--seed" not in first
        assert first[first.index("--dp-epsilon") + 1] == eps
