"""Own data: folders of DICOM / NIfTI / PNG / NumPy images split by patient, with clear errors and a data card."""

import json
import shutil

import nibabel
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from recon.data.folder import DataFolderError, FolderOptions, Intensity, folder_images, load_folder
from recon.data.phantoms import head_ct_phantoms


def png_folder(root, patients=8, slices=3, size=48, seed=3):
    """PNG slices named ``pNN_sliceKKK.png``, several per patient."""
    root.mkdir(parents=True, exist_ok=True)
    images = head_ct_phantoms(patients * slices, size, "train", seed).numpy()
    for i, image in enumerate(images):
        Image.fromarray(np.round(255 * image[0]).astype(np.uint8)).save(root / f"p{i // slices:02d}_slice{i % slices:03d}.png")
    return root


@pytest.fixture(autouse=True)
def fresh_cache():
    load_folder.cache_clear()
    yield
    load_folder.cache_clear()


def test_png_folder_split_by_patient(tmp_path):
    root = png_folder(tmp_path / "pngs")
    splits = {name: folder_images(root, None, 32, name, 0)[0] for name in ("train", "val", "test")}
    card = folder_images(root, None, 32, "train", 0)[1]
    assert sum(t.shape[0] for t in splits.values()) == 24
    assert all(t.shape[1:] == (1, 32, 32) and 0 <= float(t.min()) and float(t.max()) <= 1 for t in splits.values())
    counts = card["counts"]
    assert min(c["patients"] for c in counts.values()) >= 1 and sum(c["patients"] for c in counts.values()) == 8
    assert all(c["slices"] == 3 * c["patients"] for c in counts.values())  # a patient's slices stay together
    ids = [set(card["patients_sha256_12"][k]) for k in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert "p00" not in json.dumps(card)  # patient identifiers are hashed
    other = load_folder(str(root.resolve()), 32, 1, FolderOptions())[1]
    assert other["patients_sha256_12"] != card["patients_sha256_12"]  # the seed chooses the split


def test_a_patient_keeps_its_split_when_others_join(tmp_path):
    from recon.data.folder import assign_splits

    patients = [f"p{i:03d}" for i in range(200)]
    before = assign_splits(patients[:100], 0, FolderOptions())
    after = assign_splits(patients, 0, FolderOptions())
    assert all(after[p] == before[p] for p in before)
    shares = {k: sum(v == k for v in after.values()) / 200 for k in ("train", "val", "test")}
    assert 0.04 < shares["test"] < 0.18 and 0.04 < shares["val"] < 0.18


def test_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFolderError, match="no image files"):
        folder_images(tmp_path / "empty")
    with pytest.raises(DataFolderError, match="not a folder"):
        folder_images(tmp_path / "missing")
    root = png_folder(tmp_path / "bad")
    (root / "p99_broken.png").write_bytes(b"not a png")
    with pytest.raises(DataFolderError, match="(?s)p99_broken.png.*--skip-unreadable"):
        folder_images(root, size=32)
    card = folder_images(root, size=32, options=FolderOptions(skip_unreadable=True))[1]
    assert [s["file"] for s in card["skipped"]] == ["p99_broken.png"]
    with pytest.raises(DataFolderError, match="(?s)smaller than --size 64.*--small skip"):
        folder_images(png_folder(tmp_path / "small", size=40), size=64)
    with pytest.raises(DataFolderError, match="at least 3"):
        folder_images(png_folder(tmp_path / "two", patients=2), size=32)
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataFolderError, match="no slice could be used"):
        folder_images(only_bad, size=32, options=FolderOptions(skip_unreadable=True))
    np.save(tmp_path / "bad" / "p98_hu.npy", np.full((40, 40), 300.0))
    with pytest.raises(DataFolderError, match="outside \\[0, 1\\].*--modality ct"):
        folder_images(root, size=32, options=FolderOptions(skip_unreadable=True))


def test_leaks_are_refused(tmp_path):
    root = tmp_path / "given"
    for name in ("train", "val", "test"):
        png_folder(root / name / f"patient_{name}", patients=1, slices=2, seed={"train": 1, "val": 2, "test": 3}[name])
    shutil.copytree(root / "train" / "patient_train", root / "train" / "patient_b")  # same pixels, another patient: fine
    images, card = folder_images(root, None, 32, "val")
    assert card["split_rule"].startswith("given") and images.shape[0] == 2
    load_folder.cache_clear()
    shutil.copytree(root / "train" / "patient_b", root / "test" / "patient_b")  # patient_b also in test: a leak
    with pytest.raises(DataFolderError, match="leaks: patient .* in train .* and in test"):
        folder_images(root, None, 32, "val")
    load_folder.cache_clear()
    shutil.rmtree(root / "test" / "patient_b")
    shutil.copytree(root / "train" / "patient_b", root / "test" / "patient_c")  # a copied image under a new name
    with pytest.raises(DataFolderError, match="leaks: an identical image"):
        folder_images(root, None, 32, "val")


def test_dicom_in_hounsfield_units_and_mixed_modalities(tmp_path):
    root = tmp_path / "dicom"
    root.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), root / name)
    with pytest.raises(DataFolderError, match="mixes modalities.*--modality"):
        folder_images(root, size=32)
    # three CT "patients": the same slice under three PatientIDs, shifted so that the images differ
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for k in range(3):
        ds.PatientID = f"case{k}"
        ds.PixelData = (ds.pixel_array + 40 * k).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(root / f"ct{k}.dcm")
    (root / "CT_small.dcm").unlink()
    ds.Modality, ds.PatientID = "OT", "case_ot"  # no CT tag: left out, and listed
    ds.PixelData = (ds.pixel_array + 200).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(root / "ot.dcm")
    window = Intensity((-1000.0, 1000.0))
    images, card = folder_images(root, None, 64, "train", options=FolderOptions(modality="ct", intensity=window))
    assert card["modality"] == "ct" and card["intensity"]["window_hu"] == [-1000.0, 1000.0]
    assert card["skipped"] == [{"file": "MR_small.dcm", "reason": "modality mri, not ct (set the tag to use it)"},
                               {"file": "ot.dcm", "reason": "no CT or MR Modality tag, not ct (set the tag to use it)"}]
    raw = (ds.pixel_array - 200).astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)  # case2's
    assert card["source"]["intensity"]["max"] == raw.max()  # in HU (rescaled), not the stored values (1024 above)
    assert sum(c["patients"] for c in card["counts"].values()) == 3 and images.shape[1:] == (1, 64, 64)


def test_nifti_volume_slices_and_modality(tmp_path):
    root = tmp_path / "nifti"
    rng = np.random.default_rng(0)
    for k in range(3):
        root.joinpath(f"sub{k}").mkdir(parents=True)
        volume = rng.uniform(0, 500, (40, 40, 5))
        nibabel.save(nibabel.Nifti1Image(volume, np.diag([1.0, 1.0, 2.0, 1.0])), root / f"sub{k}" / "t1.nii.gz")
    with pytest.raises(DataFolderError, match="NIfTI .*--modality"):
        folder_images(root, size=32)
    images, card = folder_images(root, None, 40, "train", options=FolderOptions(modality="mri"))
    assert card["counts"]["train"] == {"patients": 1, "volumes": 1, "slices": 5}
    saturated = float((images == 1).float().mean())  # each volume over its own 99.5th percentile, saturating
    assert 0.003 < saturated < 0.007
