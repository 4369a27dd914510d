"""Issue 24's cases for ``python -m recon.reconstruct`` and ``python -m recon.tune``: a run never writes over its input,
sizes are bounded before any work, and an expected error is one line (``prog: error: ...``, exit status 2), never a
traceback. Every case runs the program's ``__main__`` in a subprocess (``runpy``, as ``python -m`` does), many cases to
one interpreter so that the file stays short (importing torch costs seconds); three cases also run as
``python -m ...`` command lines of their own."""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from recon.files import OUTPUT_MARKER
from recon.models.checkpoints import resolve

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "RECON_PRECISION": "fp32"}
RECONSTRUCT = ["-m", "recon.reconstruct", "--prior", "head_ct", "--operator", "ct", "--samples", "1"]
TUNE = ["-m", "recon.tune", "--prior", "head_ct", "--data", "head_ct", "--setting", "ct:16", "--method", "tv",
        "--n-val", "1", "--n-trials", "1"]


def png(path, size=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size), dtype=np.uint8)).save(path)
    return path


def prior_with(folder, edit):
    """A copy of the shipped head CT prior with ``edit(folder)`` applied."""
    shutil.copytree(resolve("head_ct"), folder)
    edit(folder)
    return folder


def edit_card(change):
    def edit(folder):
        card = json.loads((folder / "card.json").read_text())
        change(card)
        (folder / "card.json").write_text(json.dumps(card))
    return edit


def made_inputs(tmp):
    """The files the cases read, made in ``tmp``."""
    png(tmp / "scan.png")
    (tmp / "self").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp / "self" / "recon.dcm")  # the issue's 128 x 128 original
    png(tmp / "data" / "a.png")
    (tmp / "unmarked").mkdir()
    (tmp / "unmarked" / "recon.npy").write_bytes(b"someone else's")
    (tmp / "a_file").write_text("x")
    Image.new("L", (5000, 5000)).save(tmp / "huge.png")
    Image.new("L", (1, 1)).save(tmp / "one.png")
    np.save(tmp / "complex.npy", np.zeros((1, 16, 64), np.complex64))
    np.save(tmp / "real.npy", np.zeros((1, 64, 64), np.float32))
    np.save(tmp / "nan.npy", np.full((1, 16, 64), np.nan, np.float32))
    (tmp / "text.npy").write_text("1 2 3\n")
    np.save(tmp / "nan_scan.npy", np.where(np.eye(64) > 0, np.nan, 0.5).astype(np.float32))
    for name, text in TUNED.items():
        (tmp / name).write_text(text)
    (tmp / "notdb.db").write_text("not a database, just text\n")


TUNED = {"truncated.json": '{"method": "tv", "fi', "list.json": "[1, 2]", "keys.json": '{"method": "tv"}',
         "unknown.json": '{"method": "magic", "fixed": {}, "best": {}}',
         "type.json": '{"method": "tv", "fixed": {}, "best": {"weight": "high"}}'}
PRIORS = {"checksum": lambda f: (f / "model.safetensors").open("ab").write(b"0"),
          "truncated card": lambda f: (f / "card.json").write_text('{"kind": "edm", "conf'),
          "kind": edit_card(lambda card: card.update(kind="nope")),
          "no net": edit_card(lambda card: card["config"].pop("net"))}


def cases(tmp):
    """``name -> (argv, words the one-line message must hold)``."""
    made_inputs(tmp)

    def rec(*extra, scan="scan.png", method="fbp", out="out"):
        given = ["--input", str(tmp / scan)] if scan else []
        return [*RECONSTRUCT, *given, "--method", method, "--out", str(tmp / out), *extra]

    prior_cases = {f"prior {k}": (rec("--prior", str(prior_with(tmp / k.replace(" ", "_"), edit)), "--option",
                                      "steps=1", method="proximal"), ["--prior"]) for k, edit in PRIORS.items()}
    return {
        "input is an output": (rec("--overwrite", scan="self/recon.dcm", out="self"),
                               ["would write over the input", "recon.dcm"]),
        "out holds the input": (rec(scan="data/a.png", out="data"), ["holds the input", "--overwrite"]),
        "unmarked out": (rec(out="unmarked"), ["recon.npy", "not written by recon", "--overwrite"]),
        "out is a file": (rec(out="a_file"), ["is a file"]),
        "views 0": (rec("--views", "0"), ["--views", "at least 1"]),
        "views -3": (rec("--views", "-3"), ["--views", "at least 1"]),
        "views 100000": (rec("--views", "100000"), ["--views 100000", "512"]),
        "huge png": (rec(scan="huge.png"), ["5000 x 5000", "--max-pixels"]),
        "memory": (rec("--samples", "1000", method="proximal"), ["GiB", "--max-memory", "--samples"]),
        "1 x 1 png": (rec(scan="one.png"), ["1 x 1", "too small", "at least 8"]),
        "nan input": (rec(scan="nan_scan.npy"), ["NaN", "nan_to_num"]),
        "complex for ct": (rec("--measurements", str(tmp / "complex.npy"), scan=None), ["complex", "real sinogram"]),
        "real for mri": (rec("--operator", "mri", "--measurements", str(tmp / "real.npy"), scan=None,
                             method="zero_filled"), ["float32", "complex k-space"]),
        "nan measurements": (rec("--measurements", str(tmp / "nan.npy"), scan=None), ["NaN", "finite"]),
        "text measurements": (rec("--measurements", str(tmp / "text.npy"), scan=None), ["not a NumPy", "numpy.save"]),
        **prior_cases,
        "poisson inf": (rec("--noise", "poisson:inf"), ["--noise", "finite"]),
        **{f"tuned {name}": (rec("--tuned", str(tmp / name)), ["--tuned", name]) for name in TUNED},
        "tuned missing": (rec("--tuned", str(tmp / "none.json")), ["--tuned", "No such file"]),
        "tv weight": (rec("--option", "weight=-1.0", "--option", "iters=1", method="tv"), ["weight=-1.0"]),
        "postgresql": ([*TUNE, "--storage", "postgresql://user@localhost/db"], ["postgresql://", "driver"]),
        "redis": ([*TUNE, "--storage", "redis://localhost:6379"], ["redis://", "SQLite file"]),
        "sqlite in missing folder": ([*TUNE, "--storage", str(tmp / "nowhere" / "s.db")], ["does not exist"]),
        "not a database": ([*TUNE, "--storage", str(tmp / "notdb.db")], ["not a SQLite database"]),
        "tune views": ([*TUNE, "--setting", "ct:100000"], ["100000 views", "512"]),
        "result exists": ([*TUNE, "--result", str(tmp / "a_file")], ["--result", "exists already"]),
        "result in missing folder": ([*TUNE, "--result", str(tmp / "nowhere" / "r.json")], ["does not exist"]),
    }


# Runs each case's ``-m MODULE ARGS`` as ``python -m`` would (runpy), in this one interpreter, and reports its exit
# status and what it wrote to stderr (an uncaught exception's traceback included).
DRIVER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for name, argv in json.loads(sys.stdin.read()).items():
    err, code = io.StringIO(), 0
    sys.argv = [argv[1], *argv[2:]]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results[name] = {"returncode": code, "stderr": err.getvalue()}
print(json.dumps(results))
"""
COMMAND_LINES = ("input is an output", "views 0", "postgresql")  # also run as `python -m ...` of their own


def run_cases(table: dict) -> dict:
    """``name -> CompletedProcess``-like results of the cases in ``table``, run one after another by :data:`DRIVER`."""
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(table), capture_output=True, text=True,
                          env=ENV, timeout=300, check=True)
    return {name: SimpleNamespace(**result) for name, result in json.loads(done.stdout).items()}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run (half the table in each of two interpreters, and the command lines of :data:`COMMAND_LINES`),
    with the table and the first case's input bytes from before."""
    tmp = tmp_path_factory.mktemp("errors")
    table = cases(tmp)
    argv = {name: command for name, (command, _) in table.items()}
    before = (tmp / "self" / "recon.dcm").read_bytes()
    names = list(argv)
    with ThreadPoolExecutor(3) as pool:
        halves = [pool.submit(run_cases, {n: argv[n] for n in part}) for part in (names[::2], names[1::2])]
        lines = {n: pool.submit(subprocess.run, [sys.executable, *argv[n]], capture_output=True, text=True, env=ENV,
                                timeout=120, check=False) for n in COMMAND_LINES}
        done = {name: result for half in halves for name, result in half.result().items()}
        lines = {name: future.result() for name, future in lines.items()}
    return {"table": table, "done": done, "lines": lines, "tmp": tmp, "before": before}


def one_line_error(done, words) -> None:
    """Exit status 2, one ``prog: error: ...`` line (the last) holding ``words``, and no traceback."""
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(errors) == 1 and done.stderr.rstrip().endswith(errors[0]), done.stderr[-3000:]
    assert all(w in errors[0] for w in words), errors[0]


CASES = ["input is an output", "out holds the input", "unmarked out", "out is a file", "views 0", "views -3",
         "views 100000", "huge png", "memory", "1 x 1 png", "nan input", "complex for ct", "real for mri", "nan measurements",
         "text measurements", "prior checksum", "prior truncated card", "prior kind", "prior no net", "poisson inf",
         "tuned truncated.json", "tuned list.json", "tuned keys.json", "tuned unknown.json", "tuned type.json",
         "tuned missing", "tv weight", "postgresql", "redis", "sqlite in missing folder", "not a database",
         "tune views", "result exists", "result in missing folder"]


@pytest.mark.parametrize("case", CASES)
def test_one_line_and_exit_2(outcomes, case):
    one_line_error(outcomes["done"][case], outcomes["table"][case][1])


@pytest.mark.parametrize("case", COMMAND_LINES)
def test_one_line_and_exit_2_as_a_command_line(outcomes, case):
    one_line_error(outcomes["lines"][case], outcomes["table"][case][1])


def test_the_input_is_never_written_over(outcomes):
    tmp = outcomes["tmp"]
    assert set(CASES) == set(outcomes["table"]) and set(os.listdir(tmp / "self")) == {"recon.dcm"}
    assert (tmp / "self" / "recon.dcm").read_bytes() == outcomes["before"]
    assert (tmp / "data" / "a.png").exists() and not (tmp / "data" / OUTPUT_MARKER).exists()
    assert (tmp / "unmarked" / "recon.npy").read_bytes() == b"someone else's"


def test_a_run_marks_its_folder_and_replaces_an_earlier_run_only_when_told(tmp_path):
    scan = png(tmp_path / "scan.png")
    command = [sys.executable, *RECONSTRUCT, "--input", str(scan), "--method", "fbp", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (tmp_path / "out" / "spread.npy").write_bytes(b"an earlier run's file")  # left by a run with --samples
    again = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert again.returncode == 2 and "an earlier reconstruction's results" in again.stderr, again.stderr[-3000:]
    done = subprocess.run([*command, "--overwrite"], capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert "spread.npy" not in files  # no file of the earlier run stays beside this one's
    assert OUTPUT_MARKER in files and not any(name.endswith(".tmp") for name in files)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["files"] == sorted(files - {OUTPUT_MARKER})
