"""Try the own-data commands as a new user would, and record what they print and how long they take.

    python scripts/try_own_data.py            # writes results/own_data.json (about 12 minutes on 2 CPU cores)

1. A folder of PNG slices (several per patient, named ``pNN_sliceKK.png``): one command trains a small prior on its
   train split, one reconstructs a slice of a test patient from simulated 16-view CT.
2. The DICOM files that pydicom ships (its test-files folder, as installed): the CT slices among them (three real
   patients, one slice each) train a small prior on the one training slice (batch 1; the command's first try with
   the default batch stops and says so); the test patient's slice is reconstructed.
3. The PNG training again under ``torchrun`` with two processes (gloo) against one process at the same global
   batch: the loss curves and the wall times.
4. The shipped head-CT prior on pydicom's real head CT slice (CQ500), the case the chapter repeats live.

Every command runs in a fresh process; the results file keeps each command line, its wall time and its report.
The priors trained here are demonstrations of the workflow (minutes of training on a few slices), not shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from recon.data.folder import hashed
from recon.data.phantoms import head_ct_phantoms
from recon.provenance import ROOT, provenance
from studies.results import save_results

CQ500 = "693_J2KI.dcm"  # pydicom's real head CT slice (a regression file; its PatientID names the CQ500 collection)


def _pydicom_files() -> Path:
    import pydicom.data

    return Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent


PYDICOM_FILES = _pydicom_files()


def timed(command: list[str], work: Path) -> dict:
    """Run ``command`` (``python -m ...`` or ``torchrun ...``) in a fresh process; its wall time and last JSON line."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    last = [line for line in done.stdout.splitlines() if line.startswith("{")]
    shown = " ".join(["python" if c == sys.executable else c for c in command]).replace(str(work) + "/", "")
    shown = shown.replace(str(PYDICOM_FILES), "$PYDICOM_TEST_FILES")
    return {"command": shown, "seconds": round(seconds, 1), "printed": json.loads(last[-1]) if last else None}


def png_folder(root: Path, patients: int = 32, slices: int = 4, size: int = 128) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    images = head_ct_phantoms(patients * slices, size, "test", 7).numpy()
    for i, image in enumerate(images):
        name = f"p{i // slices:02d}_slice{i % slices:02d}.png"
        Image.fromarray(np.round(255 * image[0]).astype(np.uint8)).save(root / name)
    return root


def test_file(folder: Path, prior: Path, pattern: str) -> Path:
    """A file of a patient the prior's data card puts in the test split."""
    card = json.loads((prior / "data_card.json").read_text())
    test_ids = set(card["patients_sha256_12"]["test"])
    for path in sorted(folder.glob(pattern)):
        patient = path.name.split("_")[0] if path.suffix == ".png" else _dicom_patient(path)
        if patient and hashed(patient) in test_ids:
            return path
    raise SystemExit(f"no test-split file matching {pattern} under {folder}")


def _dicom_patient(path: Path) -> str | None:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - not every file of pydicom's test folder is DICOM
        return None
    return str(ds.get("PatientID", "")) if ds.get("Modality") == "CT" else None


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "own_data")
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args(argv)
    record = provenance("python scripts/try_own_data.py " + " ".join(argv or sys.argv[1:]))
    started = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)
    work = args.work
    train = [sys.executable, "-m", "recon.train"]
    small = ["--size", "64", "--base", "16", "--batch", "32", "--steps", str(args.steps), "--checkpoint-every", "100"]
    recon = [sys.executable, "-m", "recon.reconstruct", "--operator", "ct", "--views", "16"]
    pngs = png_folder(work / "pngs")
    runs = {"png_train": timed([*train, "--data", str(pngs), *small, "--out", str(work / "png_prior")], work)}
    png_case = test_file(pngs, work / "png_prior", "*.png")
    runs["png_reconstruct"] = timed([*recon, "--prior", str(work / "png_prior"), "--input", str(png_case),
                                     "--out", str(work / "png_recon")], work)
    dicoms = PYDICOM_FILES
    runs["dicom_train"] = timed([*train, "--data", str(dicoms), "--modality", "ct", "--skip-unreadable", "--small",
                                 "skip", *small, "--batch", "1", "--out", str(work / "dicom_prior")], work)
    dicom_case = test_file(dicoms, work / "dicom_prior", "*.dcm")
    runs["dicom_reconstruct"] = timed([*recon, "--prior", str(work / "dicom_prior"), "--input", str(dicom_case),
                                       "--out", str(work / "dicom_recon")], work)
    runs.update(scale_out(work, pngs, train))
    runs["shipped_cq500"] = timed([*recon, "--prior", "head_ct", "--input", str(dicoms / CQ500),
                                   "--out", str(work / "cq500")], work)
    results = {"runs": runs, "reports": {k: json.loads((work / d / "report.json").read_text()) for k, d in
                                         (("png", "png_recon"), ("dicom", "dicom_recon"), ("cq500", "cq500"))},
               "data_cards": {k: json.loads((work / d / "data_card.json").read_text()) for k, d in
                              (("png", "png_prior"), ("dicom", "dicom_prior"))},
               "cases": {"png": png_case.name, "dicom": dicom_case.name, "cq500": CQ500}}
    return save_results("own_data", results, {**record, "seconds": round(time.perf_counter() - started)})


def scale_out(work: Path, pngs: Path, train: list[str]) -> dict:
    """The same short training on one process and on two (torchrun, gloo), at the same global batch."""
    common = ["--data", str(pngs), "--size", "64", "--base", "16", "--batch", "32", "--steps", "40",
              "--curve-every", "1", "--precision", "fp32"]
    one = timed([*train, *common, "--out", str(work / "one_process")], work)
    two = timed([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                 "recon.train", *common, "--out", str(work / "two_processes")], work)
    curves = [json.loads((work / d / "card.json").read_text())["loss_curve"] for d in ("one_process", "two_processes")]
    gap = max(abs(a[1] - b[1]) / abs(a[1]) for a, b in zip(*curves))
    return {"one_process": one, "two_processes": {**two, "max_relative_loss_difference": gap}}


if __name__ == "__main__":
    print(main())
