"""Issue 24, the training program and checkpoints: no run loses data. An ``--out`` holding a previous run is refused
unless ``--overwrite`` or ``--resume`` says what to do with it, and a run that fails early leaves it as it was; every
file is written atomically and a damaged state is refused by name; ``--resume`` on other data is refused; SIGINT and
SIGTERM save a resumable state and print the command that resumes it; a card is covered by its own checksum and must
fit its weights."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_own_data import png_folder

from recon.cli.errors import UsageError
from recon.cli.train import run
from recon.files import OUTPUT_MARKER, atomic_write
from recon.models.checkpoints import card_digest, load_card, load_denoiser

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
TINY = ["--data", "head_ct", "--size", "16", "--n-train", "8", "--batch", "4", "--base", "8", "--mults", "1", "2",
        "--warmup", "1", "--curve-every", "1", "--precision", "fp32", "--device", "cpu"]
STATE = "train_state.pt"


def program(*args, timeout=120):
    """``python -m recon.train ARGS`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "recon.train", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout, check=False)


def refused(done) -> str:
    """The one-line error of a refused run (exit status 2, no traceback)."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("python -m recon.train: error: ")]
    return line


def snapshot(folder) -> dict:
    """Every file of ``folder`` with its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "prior"
    run([*TINY, "--steps", "2", "--out", str(out)])
    return out


@pytest.fixture
def prior(trained, tmp_path):
    """A copy of a finished two-step run (card, weights, state), for a test to change."""
    return shutil.copytree(trained, tmp_path / "prior")


# Case 2: `--out` holding a prior, and a run that fails early.

def test_an_out_holding_a_checkpoint_is_refused_and_left_as_it_was(prior):
    before = snapshot(prior)
    line = refused(program(*TINY, "--steps", "2", "--out", str(prior)))
    assert f"--out {prior} already holds a previous run's files (card.json, model.safetensors, train_state.pt)" in line
    assert "pass --overwrite to replace them, --resume to continue that run" in line
    assert snapshot(prior) == before


def test_a_run_that_fails_early_leaves_the_folder_as_it_was(prior, tmp_path):
    """The reviewer's case: a folder run whose batch check fails used to write its data card beside the old model."""
    data = png_folder(tmp_path / "pngs", size=16)
    before = snapshot(prior)
    with pytest.raises(UsageError, match=r"only \d+ training image.*--batch \d+ or less"):
        run([*TINY, "--data", str(data), "--batch", "64", "--steps", "2", "--overwrite", "--out", str(prior)])
    assert snapshot(prior) == before


def test_overwrite_replaces_the_whole_previous_run(prior, tmp_path):
    data = png_folder(tmp_path / "pngs", size=16)
    run([*TINY, "--data", str(data), "--steps", "1", "--overwrite", "--out", str(prior)])
    assert (prior / "data_card.json").exists() and (prior / OUTPUT_MARKER).exists()
    run([*TINY, "--steps", "1", "--overwrite", "--out", str(prior)])  # a family's run has no data card: the old goes
    assert sorted(p.name for p in prior.iterdir()) == [OUTPUT_MARKER, "card.json", "model.safetensors", STATE]
    assert load_card(prior)["config"]["data"] == "head_ct" and load_denoiser(prior).image_size == 16


# Case 3: a kill during a save, and resuming from a damaged state.

def test_atomic_write_keeps_the_old_file_when_the_write_is_cut_short(tmp_path):
    path = tmp_path / STATE
    path.write_bytes(b"the previous state")

    def killed_halfway(temporary):
        temporary.write_bytes(b"half of")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, killed_halfway)
    assert path.read_bytes() == b"the previous state" and list(tmp_path.iterdir()) == [path]


def test_a_save_cut_short_keeps_the_previous_state(prior, monkeypatch):
    before = (prior / STATE).read_bytes()

    def killed_halfway(obj, f):
        open(f, "wb").close()  # the 0-byte file the reviewer found
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        run([*TINY, "--steps", "3", "--resume", "--out", str(prior)])
    monkeypatch.undo()
    assert (prior / STATE).read_bytes() == before and not list(prior.glob(".*.tmp"))
    run([*TINY, "--steps", "3", "--resume", "--out", str(prior)])
    assert load_card(prior)["steps_done"] == 3


def test_resuming_a_damaged_state_is_one_line_naming_the_file(prior):
    state = prior / STATE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    before = snapshot(prior)
    line = refused(program(*TINY, "--steps", "3", "--resume", "--out", str(prior)))
    assert f"--resume: {state} is not a whole training state (RuntimeError" in line
    assert f"drop --resume and pass --overwrite to start a new run in {prior}" in line
    assert snapshot(prior) == before
    state.write_bytes(b"")
    with pytest.raises(UsageError, match="is not a whole training state \\(EOFError"):
        run([*TINY, "--steps", "3", "--resume", "--out", str(prior)])


def test_resume_without_a_state_says_so_and_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match=f"no {tmp_path / 'new' / STATE} to continue .*drop --resume to start a new"):
        run([*TINY, "--steps", "2", "--resume", "--out", str(tmp_path / "new")])
    assert not (tmp_path / "new").exists()


# Case 4: `--resume` on other data.

def test_resuming_on_other_data_is_refused_naming_both(prior):
    before = snapshot(prior)
    with pytest.raises(UsageError, match=rf"{prior / STATE} continues a run on --data head_ct --size 16 --n-train 8 "
                                         r"--seed 0 --loss edm \(data fingerprint \w+\), but this run trains on --data brain "
                                         r"--size 16 --n-train 8 --seed 0"):
        run([*TINY, "--data", "brain", "--steps", "3", "--resume", "--out", str(prior)])
    assert snapshot(prior) == before


def test_resuming_on_a_changed_folder_is_refused(tmp_path):
    data, out = png_folder(tmp_path / "pngs", size=16), tmp_path / "prior"
    run([*TINY, "--data", str(data), "--steps", "1", "--out", str(out)])
    first = min(data.glob("*.png"))
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(first)
    with pytest.raises(UsageError, match=r"continues a run on --data .*pngs.* but this run trains on --data .*pngs.*"
                                         r"\(the folder's images changed\)"):
        run([*TINY, "--data", str(data), "--steps", "2", "--resume", "--out", str(out)])


def test_resuming_a_folder_read_or_split_otherwise_is_refused(tmp_path):
    data, out = png_folder(tmp_path / "pngs", size=16), tmp_path / "prior"
    run([*TINY, "--data", str(data), "--steps", "1", "--out", str(out)])
    before = snapshot(out)
    with pytest.raises(UsageError, match=r"read with .*val_fraction=0\.\d+.* but this run trains on .*val_fraction=0\.3"):
        run([*TINY, "--data", str(data), "--steps", "2", "--val-fraction", "0.3", "--resume", "--out", str(out)])
    assert snapshot(out) == before


def test_out_may_not_be_the_init_checkpoint_or_inside_the_data(tmp_path, prior):
    with pytest.raises(UsageError, match="is the --init checkpoint"):
        run([*TINY, "--loss", "ect", "--init", str(prior), "--overwrite", "--out", str(prior)])
    data = png_folder(tmp_path / "pngs", size=16)
    for out in (data, data / "runs" / "p"):
        with pytest.raises(UsageError, match="overlaps the --data folder"):
            run([*TINY, "--data", str(data), "--out", str(out)])
    assert not (data / OUTPUT_MARKER).exists() and not (data / "runs").exists()


@pytest.mark.parametrize("flags, words", [(["--steps", "0"], "steps"), (["--size", "4"], "size"),
                                          (["--n-train", "0"], "n"), (["--lr", "0"], "lr"),
                                          (["--n-train", "100000000"], "--max-memory")])
def test_bad_training_settings_are_one_line(tmp_path, flags, words):
    result = subprocess.run([sys.executable, "-m", "recon.train", *TINY, *flags, "--out", str(tmp_path / "p")],
                            check=False, capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("python -m recon.train: error:") and words in result.stderr
    assert not (tmp_path / "p").exists()


# Case 5: SIGINT and SIGTERM.

@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_resumable_state_and_says_how_to_resume(tmp_path, signum, status):
    out = tmp_path / "prior"
    process = subprocess.Popen([sys.executable, "-m", "recon.train", *TINY, "--steps", "100000", "--out", str(out)],
                               stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 90
    while not (out / OUTPUT_MARKER).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # the marker appears once the run has caught signals and begun writing
    time.sleep(0.5)
    process.send_signal(signum)
    stderr = process.communicate(timeout=90)[1]
    assert process.returncode == status and "Traceback" not in stderr, stderr[-3000:]
    step = torch.load(out / STATE, weights_only=True)["step"]
    [line] = [line for line in stderr.splitlines() if "Resume with: " in line]
    assert f"stopped by {signal.Signals(signum).name} after step {step} of 100000" in line and step >= 1
    command = shlex.split(line.split("Resume with: ")[1])
    assert command[:3] == ["python", "-m", "recon.train"] and command[-1] == "--resume"
    args = command[3:]
    args[args.index("--steps") + 1] = str(step + 2)
    run(args)
    assert load_card(out)["steps_done"] == step + 2


# Case 10: an edited card.

@pytest.mark.parametrize("edit", [{"kind": "consistency"}, {"config": "image_size=32"}])
def test_an_edited_card_is_refused(prior, edit):
    card = json.loads((prior / "card.json").read_text())
    assert card["card_sha256"] == card_digest(card)
    if "kind" in edit:
        card["kind"] = edit["kind"]
    else:
        card["config"]["image_size"] = 32
    (prior / "card.json").write_text(json.dumps(card, indent=1))
    with pytest.raises(ValueError, match=r"card\.json does not match its card_sha256 .* the card was edited after"):
        load_denoiser(prior)


def test_a_card_must_fit_its_weights_even_without_its_checksum(prior):
    card = json.loads((prior / "card.json").read_text())
    del card["card_sha256"]
    (prior / "card.json").write_text(json.dumps(card, indent=1))
    with pytest.warns(UserWarning, match="carries no card_sha256"):
        assert load_denoiser(prior).image_size == 16  # a card written before the checksum still loads, with a warning
    card["config"]["net"]["base"] = 16
    (prior / "card.json").write_text(json.dumps(card, indent=1))
    with pytest.raises(ValueError, match=rf"{prior}: the network its card.json describes .* does not fit "
                                         r"model\.safetensors .* restore the card as training wrote it, or retrain"):
        load_denoiser(prior)


def test_every_shipped_card_carries_its_checksum_and_an_edit_is_refused(tmp_path):
    root = Path(__file__).resolve().parent.parent / "checkpoints"
    for card_path in sorted(root.glob("*/card.json")):
        card = json.loads(card_path.read_text())
        assert card["card_sha256"] == card_digest(card), card_path
    shutil.copytree(root / "head_ct_64", tmp_path / "edited")
    card = json.loads((tmp_path / "edited" / "card.json").read_text())
    card["config"]["image_size"] = 128  # the reviewer's edit: the network's shapes do not show it
    (tmp_path / "edited" / "card.json").write_text(json.dumps(card, indent=1))
    with pytest.raises(ValueError, match="the card was edited after training"):
        load_denoiser(tmp_path / "edited")
    assert load_denoiser("head_ct").image_size == 64
