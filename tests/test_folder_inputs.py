"""Inputs that used to become silently wrong data (issue 24, cases 6 to 9): each is used as it is, or left out and
listed with why; a leak is judged on the images as the model sees them; recon's own outputs are never read."""

import os
import subprocess
import sys

import nibabel
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from test_own_data import png_folder

from recon.data.folder import DataFolderError, FolderOptions, describe_skipped, folder_images, hashed, load_folder
from recon.files import mark_output

CT = FolderOptions(modality="ct")


@pytest.fixture(autouse=True)
def fresh_cache():
    load_folder.cache_clear()
    yield
    load_folder.cache_clear()


def patients(card):
    return sum(c["patients"] for c in card["counts"].values())


def reasons(card):
    return {k["file"]: k["reason"] for k in card["skipped"]}


def test_nan_in_a_nifti_volume_is_listed_never_dropped_silently(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(6):
        volume = rng.uniform(0, 500, (40, 40, 5))
        if k == 4:
            volume[3, 3, 2] = np.nan  # one slice
        if k == 5:
            volume[0, 0, :] = np.inf  # every slice: the patient goes, and is listed
        (tmp_path / f"sub{k}").mkdir()
        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / f"sub{k}" / "t1.nii.gz")
    card = folder_images(tmp_path, None, 40, "train", options=FolderOptions(modality="mri"))[1]
    assert patients(card) == 5 and sum(c["slices"] for c in card["counts"].values()) == 24
    assert reasons(card) == {
        "sub4/t1.nii.gz": "contains NaN/Inf values in 1 of its 5 slices (index 2); left out (replace them, e.g. with "
                          "numpy.nan_to_num, to use it)",
        "sub5/t1.nii.gz": "contains NaN/Inf values in 5 of its 5 slices (index 0, 1, 2, 3, 4); left out (replace them, "
                          "e.g. with numpy.nan_to_num, to use them)"}


def test_nan_in_a_numpy_slice_is_never_kept(tmp_path):
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=32)
    bad = np.full((32, 32), 0.5)
    bad[4, 4] = np.nan
    np.save(root / "p09_slice000.npy", bad)
    np.save(root / "p10_slice000.npy", np.stack([np.full((32, 32), 0.2), np.full((32, 32), np.inf)]))
    card = folder_images(root, None, 32, "train")[1]
    assert reasons(card)["p09_slice000.npy"].startswith("contains NaN/Inf values in its only slice; left out")
    assert "1 of its 2 slices (index 1)" in reasons(card)["p10_slice000.npy"]
    assert patients(card) == 5 and np.isfinite(list(card["source"]["intensity"].values())).all()
    assert all(folder_images(root, None, 32, split)[0].isfinite().all() for split in ("train", "val", "test"))


def ct_patients(root, n=3):
    """``n`` CT DICOM files (the pydicom test slice, shifted so that they differ), one patient each; returns one."""
    root.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = ds.pixel_array
    for k in range(n):
        ds.PatientID = f"case{k}"
        ds.PixelData = (pixels + 40 * k).astype(pixels.dtype).tobytes()
        ds.save_as(root / f"ct{k}.dcm")
    return ds


def test_a_dicom_whose_header_disagrees_with_its_pixels_is_unreadable(tmp_path):
    ds = ct_patients(tmp_path)
    big = np.zeros((128, 128), np.int16)
    big[40:90, 40:90] = 500
    ds.PatientID, ds.PixelData, ds.Rows, ds.Columns = "case9", big.tobytes(), 64, 64
    ds.save_as(tmp_path / "scrambled.dcm")
    expected = ("the header's Rows x Columns x NumberOfFrames = 64 x 64 x 1 (4096 pixels) disagrees with the pixel "
                "data (32768 bytes at 16 bits: 16384 pixels), which pydicom reads as 4 x 64 x 64")
    with pytest.raises(DataFolderError, match="(?s)scrambled.dcm: unreadable: .*--skip-unreadable") as error:
        folder_images(tmp_path, size=64, options=CT)
    assert expected in str(error.value)
    card = folder_images(tmp_path, None, 64, "train", options=FolderOptions(modality="ct", skip_unreadable=True))[1]
    assert expected in reasons(card)["scrambled.dcm"] and patients(card) == 3


def test_symbolic_links_are_followed_once_and_listed(tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b", "c"):
        png_folder(root / name, patients=1, slices=2, size=32, seed=ord(name))
    elsewhere = png_folder(tmp_path / "elsewhere" / "d", patients=1, slices=2, size=32, seed=9)
    os.symlink(elsewhere, root / "d")  # a patient kept elsewhere: read, and the link recorded
    os.symlink(root / "a", root / "e")  # a second route to patient a: skipped
    os.symlink(root, root / "b" / "loop")  # a loop: skipped
    os.symlink(tmp_path / "missing", root / "f")
    card = folder_images(root, None, 32, "train")[1]
    assert patients(card) == 4 and card["links_followed"] == [{"link": "d", "target": str(elsewhere.resolve())}]
    found = reasons(card)
    assert found["e/"].startswith("a symbolic link to ") and found["e/"].endswith("already read as a; skipped so "
                                                                                "that no image is read twice")
    assert "already read as ." in found["b/loop/"] and found["f"].startswith("a broken symbolic link")


def test_colour_images_are_listed_with_the_fix(tmp_path):
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=32)
    Image.new("RGB", (32, 32), (10, 20, 30)).save(root / "p20_rgb.png")
    Image.new("RGBA", (32, 32)).save(root / "p21_rgba.png")
    np.save(root / "p22_rgb.npy", np.zeros((32, 32, 3)))
    card = folder_images(root, None, 32, "train")[1]
    found = reasons(card)
    assert patients(card) == 4 and all("convert it to greyscale" in found[f] for f in
                                       ("p20_rgb.png", "p21_rgba.png", "p22_rgb.npy"))
    assert found["p20_rgb.png"].startswith("an RGB (colour) image")
    assert "skipped p21_rgba.png: an RGBA (colour) image; only greyscale images are used: convert it to greyscale " \
           "(e.g. Pillow's image.convert('L'))" in describe_skipped(card["skipped"])


def test_a_huge_slice_is_refused_from_its_header_before_decoding(tmp_path):
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=32)
    Image.new("L", (9000, 9000)).save(root / "p30_huge.png")  # 78 KB on disk, 81 MB decoded
    np.save(root / "p31_huge.npy", np.zeros((1, 5000, 5000), np.uint8))
    card = folder_images(root, None, 32, "train")[1]
    found = reasons(card)
    assert patients(card) == 4 and "9000 x 9000 pixels" in found["p30_huge.png"]
    assert "5000 x 5000 pixels" in found["p31_huge.npy"] and "limit of 4096 x 4096" in found["p31_huge.npy"]
    volumes = tmp_path / "nifti"
    for i in range(4):
        (volumes / f"p{i}").mkdir(parents=True)
        nibabel.save(nibabel.Nifti1Image(np.random.default_rng(i).random((32, 32, 3), np.float32), np.eye(4)),
                     volumes / f"p{i}" / "t1.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.zeros((5000, 5000, 1), np.uint8), np.eye(4)), volumes / "p0" / "huge.nii.gz")
    found = reasons(folder_images(volumes, None, 32, "train", options=FolderOptions(modality="mri"))[1])
    assert "5000 x 5000 pixels" in found["p0/huge.nii.gz"]


def test_files_the_reader_does_not_take_are_listed(tmp_path):
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=32)
    Image.new("L", (32, 32)).save(root / "p40_scan.jpg")
    (root / "notes.txt").write_text("acquired on the old scanner\n")
    found = reasons(folder_images(root, None, 32, "train")[1])
    assert "not a file this reader takes" in found["p40_scan.jpg"] and "convert it" in found["notes.txt"]


def test_control_characters_in_names_are_listed_never_a_patient(tmp_path):
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=32)
    os.rename(root / "p03_slice000.png", root / "p3\n_slice000.png")
    (root / "p5\t").mkdir()
    os.rename(root / "p02_slice000.png", root / "p5\t" / "x.png")
    card = folder_images(root, None, 32, "train")[1]
    found = reasons(card)
    assert set(found) == {"p3\\n_slice000.png", "p5\\t/"} and patients(card) == 4
    assert all("control or invisible character" in r for r in found.values())
    assert sum(c["slices"] for c in card["counts"].values()) == 6


def test_describe_skipped_caps_and_merges():
    entries = [{"file": f"f{k}.png", "reason": "why"} for k in range(25)]
    lines = describe_skipped(entries + entries[:1], limit=20)
    assert len(lines) == 21 and lines[0] == "skipped f0.png: why" and lines[-1].startswith("... and 5 more")


def hu_slice(seed: int) -> np.ndarray:
    """A 40 x 40 CT slice in HU: air around soft tissue."""
    image = np.full((40, 40), -1000.0)
    image[8:32, 8:32] = np.random.default_rng(seed).uniform(-100, 200, (24, 24))
    return image


def given_split(root, test_image):
    """A folder split by hand, one patient per split, and a test patient whose slice is ``test_image``."""
    for k, split in enumerate(("train", "val", "test")):
        (root / split / f"pat_{split}").mkdir(parents=True)
        np.save(root / split / f"pat_{split}" / "s0.npy", hu_slice(k))
    np.save(root / "train" / "pat_train" / "s1.npy", hu_slice(7))
    (root / "test" / "pat_other").mkdir()
    np.save(root / "test" / "pat_other" / "s0.npy", test_image)
    return root


@pytest.mark.parametrize("change, match", [
    ((0, 0, 1.0), "an identical image"),  # +1 HU in air: the same image once windowed
    ((20, 20, 1.0), "a near-identical image \\(no pixel differs by more than 0.0025"),  # 1/400 <= 1/255
])
def test_leaks_are_judged_after_windowing(tmp_path, change, match):
    row, column, hu = change
    copy = hu_slice(7)
    copy[row, column] += hu
    root = given_split(tmp_path, copy)
    files = "in train \\(train/pat_train/s1.npy:0\\) and in test \\(test/pat_other/s0.npy:0\\)"
    with pytest.raises(DataFolderError, match=f"leaks: {match}.* after the intensity rule and resizing is {files}"):
        folder_images(root, None, 40, "train", options=CT)


def test_images_apart_by_more_than_the_tolerance_are_no_leak(tmp_path):
    copy = hu_slice(7)
    copy[8:32, 8:32] += 3.0  # 3/400 > 1/255 at every tissue pixel
    images = folder_images(given_split(tmp_path, copy), None, 40, "test", options=CT)[0]
    assert images.shape[0] == 2


def test_recon_outputs_inside_the_data_folder_are_never_read(tmp_path):
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=32)
    out = mark_output(root / "recon_out")
    np.save(out / "truth.npy", np.full((32, 32), 0.5))
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(out / "recon.png")
    card = folder_images(root, None, 32, "train")[1]
    assert patients(card) == 4 and card["skipped"] == [
        {"file": "recon_out/", "reason": "holds recon's outputs (marker .recon-output); skipped"}]
    with pytest.raises(DataFolderError, match="holds recon's outputs .*pass the data folder"):
        folder_images(out, None, 32, "train")


def test_a_patient_tag_with_a_control_character_is_shown_escaped(tmp_path):
    ds = ct_patients(tmp_path)
    ds.PatientID, ds.PixelData = "case\n9", (ds.pixel_array + 400).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(tmp_path / "ct9.dcm")
    card = folder_images(tmp_path, None, 64, "train", options=CT)[1]
    ids = {p for split in card["patients_sha256_12"].values() for p in split}
    assert hashed("case\\n9") in ids and hashed("case\n9") not in ids and patients(card) == 4


def test_train_lists_what_it_left_out_on_the_console(tmp_path):
    """The reviewer's complaint: a colour PNG was left out with no console message (only in the data card)."""
    root = png_folder(tmp_path / "pngs", patients=4, slices=2, size=16)
    Image.new("RGB", (16, 16), (10, 20, 30)).save(root / "p20_rgb.png")
    command = [sys.executable, "-m", "recon.train", "--data", str(root), "--size", "16", "--n-train", "4", "--batch",
               "2", "--base", "8", "--mults", "1", "--steps", "1", "--precision", "fp32", "--device", "cpu",
               "--out", str(tmp_path / "prior")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipped p20_rgb.png: an RGB (colour) image" in done.stderr
