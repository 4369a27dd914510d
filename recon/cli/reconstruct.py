"""Reconstruct one image from the command line: a prior, a scan (DICOM, NIfTI, PNG or .npy) or given measurements, an
operator, and a folder for the results.

    python -m recon.reconstruct --prior head_ct --input scan.dcm --operator ct --views 16 --out out/
    python -m recon.reconstruct --prior brain --input t1.nii.gz --slice 90 --operator mri --acceleration 4 --out out/
    python -m recon.reconstruct --prior my_prior/ --measurements y.npy --operator ct --views 16 --out out/

From a scan, the measurement is simulated as the book simulates its test data: the image is read in its units (HU
for CT), mapped to [0, 1] by the prior's data card (or ``--window`` / ``--percentile``), rendered at twice the prior's
grid and measured there (off the reconstruction grid: no inverse crime; a scan smaller than that is measured on the
grid, and the report says so), with ``--noise`` if given. ``--samples`` posterior samples (seeds ``seed`` to
``seed + samples - 1``) give the reconstruction (their mean) and the posterior spread (their standard deviation).

Writes to ``--out``: ``recon.npy`` / ``recon.png`` (the posterior mean, clipped to the images' [0, 1]),
``spread.npy`` / ``spread.png`` (with two or more samples), ``samples.npy``, ``classical.png`` (FBP or zero-filled),
``truth.npy`` / ``truth.png`` and ``summary.png`` when the truth is known, ``measurements.npy``, ``recon.dcm`` (a
derived DICOM in the input's units, clipped to the window, and geometry) or ``recon.nii.gz`` for such inputs, and
``report.json`` (PSNR and SSIM when the truth is known, the correlation over pixels of the spread with the error,
the measurement residual, network evaluations, seconds, the settings, the device and precision). Each file is written
atomically, and the folder is marked as the library's output (:func:`recon.files.mark_output`). The run refuses,
before any work: an ``--out`` that is a file; one whose files it would write over include the input (always); one
that holds the input, or files of the names it writes, even an earlier run's (unless ``--overwrite``, which then
removes every file an earlier run left, so that no result of another run stays beside this one's); more views
than the image can use; an input slice over ``--max-pixels``; and an estimated memory over ``--max-memory``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from recon.cli.arguments import (
    DEFAULT_MAX_MEMORY_GIB,
    NETWORK_BYTES_PER_PIXEL,
    add_max_memory,
    check_memory,
    check_views,
    key_values,
    prior_card,
    prior_network,
)
from recon.cli.errors import UsageError, run_program
from recon.cli.images import Scan, header_shape, read_scan, write_like_input, write_npy, write_png, write_summary
from recon.data.folder import DEFAULT_WINDOW, MODALITIES, DataFolderError
from recon.data.readers import MAX_SIDE, MAX_SLICE_PIXELS
from recon.files import atomic_write_text, is_output, mark_output
from recon.methods import METHODS
from recon.metrics import psnr, ssim
from recon.models.precision import PRECISIONS
from recon.models.precision import resolve as resolve_precision
from recon.operators.masks import MASK_PATTERNS
from recon.operators.noise import ComplexGaussianMRI, PoissonCT, RelativeGaussian, simulate
from recon.operators.settings import MAX_VIEWS_PER_PIXEL, classical, make_operator, operator_bytes
from recon.reconstruction import reconstruct

PROG = "python -m recon.reconstruct"
NOISE_FORMS = "none, poisson:PHOTONS (CT), snr:SNR (MRI) or gaussian:LEVEL (a fraction of the data's RMS)"
# Every file a run may write into --out.
OUTPUT_NAMES = ("recon.npy", "recon.png", "spread.npy", "spread.png", "samples.npy", "classical.png", "truth.npy",
                "truth.png", "summary.png", "measurements.npy", "recon.dcm", "recon.nii.gz", "report.json")
DECODE_BYTES_PER_PIXEL = 24  # float64 pixels, the unit-range copy and the square


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReconstructOptions:
    """One reconstruction as its command line states it (see ``--help``; the defaults live in the parser), parsed
    once by :func:`parse_options` and never written to."""

    prior: str
    input: Path | None  # a scan to measure, also the truth for scores
    measurements: Path | None  # given measurements instead
    slice: int | None
    operator: str
    views: int
    arc: float
    acceleration: float
    pattern: str
    mask_seed: int
    noise: str
    noise_std: float
    method: str | None  # None: a tuning result's, else by the noise
    option: tuple[str, ...]  # KEY=VALUE pairs
    tuned: Path | None
    samples: int
    seed: int
    modality: str | None
    window: tuple[float, float] | None
    percentile: float | None
    device: str
    precision: str
    out: Path
    overwrite: bool = False
    max_pixels: int = MAX_SLICE_PIXELS
    max_memory: float = DEFAULT_MAX_MEMORY_GIB


def parse_options(argv=None) -> ReconstructOptions:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_problem_arguments(p)
    add_method_arguments(p)
    add_scan_arguments(p)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--out", type=Path, required=True, help="the folder for the results (created if missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out that holds the input or files of the names a run writes (never onto the "
                        "input itself)")
    p.add_argument("--max-pixels", type=int, default=MAX_SLICE_PIXELS,
                   help=f"refuse an input slice of more pixels than this (checked from its header; at most the "
                        f"reader's {MAX_SIDE} x {MAX_SIDE})")
    add_max_memory(p)
    args = p.parse_args(argv)
    if args.input is None and args.measurements is None:
        raise UsageError("pass --input (a scan to measure) or --measurements (a .npy of measurements), or both.")
    for flag, value, least in (("--samples", args.samples, 1), ("--views", args.views, 1),
                               ("--max-pixels", args.max_pixels, 1)):
        if value < least:
            raise UsageError(f"{flag} must be at least {least}; got {value}.")
    if args.max_pixels > MAX_SLICE_PIXELS:
        raise UsageError(f"--max-pixels {args.max_pixels} is above the reader's limit of {MAX_SIDE} x {MAX_SIDE} "
                         f"({MAX_SLICE_PIXELS}); downsample larger scans first.")
    return ReconstructOptions(**{**vars(args), "option": tuple(args.option),
                                 "window": None if args.window is None else tuple(args.window)})


def add_problem_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prior", required=True, help="a shipped prior's name (head_ct, brain, ...) or a checkpoint folder")
    p.add_argument("--input", type=Path, help="the scan to measure (DICOM, NIfTI, PNG, .npy); the truth for scores")
    p.add_argument("--measurements", type=Path, help="given measurements (.npy) instead of simulating them")
    p.add_argument("--slice", type=int, default=None,
                   help="which slice of a volume (its z index) or multi-frame file (default: the middle one)")
    p.add_argument("--operator", choices=("ct", "mri"), required=True)
    p.add_argument("--views", type=int, default=16,
                   help=f"CT: projection views over --arc degrees (at most {MAX_VIEWS_PER_PIXEL} x the prior's size)")
    p.add_argument("--arc", type=float, default=180.0, help="CT: the arc the views cover, in degrees")
    p.add_argument("--acceleration", type=float, default=4.0, help="MRI: undersampling factor")
    p.add_argument("--pattern", choices=sorted(MASK_PATTERNS), default="random", help="MRI: the line pattern")
    p.add_argument("--mask-seed", type=int, default=0, help="MRI: which draw of the line pattern")
    p.add_argument("--noise", default="none", help=f"simulated measurement noise: {NOISE_FORMS}")
    p.add_argument("--noise-std", type=float, default=0.0,
                   help="given --measurements: their noise standard deviation (0: noise-free)")


def add_method_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=sorted(METHODS), default=None,
                   help="default: proximal (noise-free) or proximal_ddrm (noisy)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, e.g. lam=0.6 or steps=100 (repeatable; see recon.describe_methods())")
    p.add_argument("--tuned", type=Path, default=None, help="a tuning result (python -m recon.tune --result FILE)")
    p.add_argument("--samples", type=int, default=4,
                   help="posterior samples: their mean is the reconstruction, their spread (2 or more) the uncertainty")
    p.add_argument("--seed", type=int, default=0)


def add_scan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modality", choices=MODALITIES, default=None, help="default: the prior's data card, else auto")
    p.add_argument("--window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help=f"CT window in HU (default: the prior's data card, else {DEFAULT_WINDOW})")
    p.add_argument("--percentile", type=float, default=None, help="MRI: per-volume intensity mapped to 1")


def parse_noise(text: str, operator: str):
    """The noise model a ``--noise`` string names."""
    kind, _, value = text.partition(":")
    models = {"poisson": PoissonCT, "snr": ComplexGaussianMRI, "gaussian": RelativeGaussian}
    if kind == "none" and not value:
        return None
    if kind not in models:
        raise UsageError(f"--noise {text!r} is not understood; write {NOISE_FORMS}.")
    if (kind, operator) in (("poisson", "mri"), ("snr", "ct")):
        raise UsageError(f"--noise {text!r}: {kind} noise belongs to the other modality; write {NOISE_FORMS}.")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < float("inf"):
        raise UsageError(f"--noise {text!r}: give a positive, finite number after '{kind}:'; write {NOISE_FORMS}.")
    return models[kind](number)


def read_tuned(path: Path) -> dict:
    """A tuning result (``python -m recon.tune --result``), checked: its method, ``fixed`` options and ``best``
    values."""
    fix = f"pass a file that `python -m recon.tune --result {path}` wrote"
    try:
        tuned = json.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"--tuned {path}: {error.strerror or error}; {fix}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--tuned {path} is not valid JSON ({error}); {fix}.") from None
    if not isinstance(tuned, dict):
        raise UsageError(f"--tuned {path} holds a JSON {type(tuned).__name__}, not a tuning result; {fix}.")
    missing = [key for key in ("method", "fixed", "best") if key not in tuned]
    if missing:
        raise UsageError(f"--tuned {path} has no {', '.join(missing)}; {fix}.")
    if tuned["method"] not in METHODS:
        raise UsageError(f"--tuned {path} names the method {tuned['method']!r}, which is not one of {sorted(METHODS)}; "
                         f"{fix}.")
    if not isinstance(tuned["fixed"], dict) or not isinstance(tuned["best"], dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in tuned["best"].values()):
        raise UsageError(f"--tuned {path}: 'fixed' must be an object of options and 'best' an object of numbers; got "
                         f"{json.dumps(tuned['fixed'])[:60]} and {json.dumps(tuned['best'])[:60]}; {fix}.")
    return tuned


def method_options(options: ReconstructOptions) -> tuple[str | None, dict]:
    """``(method, its options)``: ``--method``, else a tuning result's (None: neither says); the options are the
    tuning result's best values, then ``--option`` pairs (which win)."""
    tuned_options, method = {}, options.method
    if options.tuned is not None:
        tuned = read_tuned(options.tuned)
        tuned_options.update(tuned["fixed"], **tuned["best"])
        method = method or tuned["method"]
    return method, {**tuned_options, **key_values(list(options.option), "--option", "lam=0.6")}


def setting_name(options: ReconstructOptions) -> str:
    if options.operator == "ct":
        return f"ct:{options.views}" + ("" if options.arc == 180.0 else f":{options.arc:g}")
    return f"mri:{options.acceleration:g}:{options.pattern}"


def check_out(options: ReconstructOptions) -> None:
    """Refuse an ``--out`` that is a file, whose outputs would replace an input (always), or that holds an input or
    files of the output names not written by the library (unless ``--overwrite``)."""
    out = options.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder (it is created if missing).")
    for flag, given in (("--input", options.input), ("--measurements", options.measurements)):
        if given is None:
            continue
        if any(same_file(given, out / name) for name in OUTPUT_NAMES):
            raise UsageError(f"--out {out} would write over the input {flag} {given} (this run writes "
                             f"{given.name} there); pass another --out folder.")
        if given.exists() and given.resolve().is_relative_to(out.resolve()) and not options.overwrite:
            raise UsageError(f"--out {out} holds the input {flag} {given}; pass another --out folder, or --overwrite "
                             "to write beside it (the folder is then marked as output and skipped as data).")
    clash = [name for name in OUTPUT_NAMES if (out / name).exists()] if out.is_dir() else []
    if clash and not options.overwrite:
        whose = "an earlier reconstruction's results" if is_output(out) else "files not written by recon"
        raise UsageError(f"--out {out} holds {', '.join(clash)}: {whose}, which this run would replace; pass another "
                         "--out folder, or --overwrite to replace them.")


def clear_previous(options: ReconstructOptions) -> None:
    """With ``--overwrite``: remove every output an earlier run left in ``--out``, so that no file of another run
    stays beside this run's (inputs are never among them: :func:`check_out` refused those)."""
    if options.overwrite and options.out.is_dir():
        for name in OUTPUT_NAMES:
            (options.out / name).unlink(missing_ok=True)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links too)."""
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


def check_resources(options: ReconstructOptions, size: int, needs_prior: bool) -> None:
    """Refuse, before any work, more views than a ``size``-pixel image can use, an input slice over
    ``--max-pixels``, and an estimated memory (the network's per sample where the method runs one) over
    ``--max-memory``."""
    if options.operator == "ct":
        check_views(options.views, size, f"--views {options.views}")
    pixels = 0
    if options.input is not None:
        if not options.input.is_file():
            raise UsageError(f"--input {options.input}: no such file; pass a DICOM, NIfTI, PNG or .npy file.")
        try:
            (rows, columns), pixels = header_shape(options.input)
        except DataFolderError as error:
            raise UsageError(f"--input {options.input}: {error}") from None
        if rows * columns > options.max_pixels:
            raise UsageError(f"--input {options.input} is {rows} x {columns} pixels, above --max-pixels "
                             f"{options.max_pixels} ({MAX_SIDE} x {MAX_SIDE} by default); pass a smaller image"
                             + (f", or --max-pixels {rows * columns} to read it." if rows * columns <= MAX_SLICE_PIXELS
                                else f" (the reader takes at most {MAX_SIDE} x {MAX_SIDE}: downsample it first)."))
    check_memory({"operator": operator_bytes(setting_name(options), size),
                  "network": options.samples * NETWORK_BYTES_PER_PIXEL * size**2 * needs_prior,
                  "input": DECODE_BYTES_PER_PIXEL * pixels}, options.max_memory,
                 "lower --views or --samples or pass a smaller --input")


def the_operator(options: ReconstructOptions, size: int):
    """The operator the options name, its errors as the options' (``--views``, ``--arc``, ``--acceleration``)."""
    try:
        return make_operator(setting_name(options), size, seed=options.mask_seed)
    except ValueError as error:
        flags = "--views/--arc" if options.operator == "ct" else "--acceleration/--pattern"
        raise UsageError(f"{flags}: {error}") from None


def load_measurements(options: ReconstructOptions, operator) -> torch.Tensor:
    """``--measurements`` as ``(1, *operator.measurement_shape)``: a NumPy array of the operator's shape and kind
    (real sinogram for CT, complex k-space for MRI), finite; its shape is checked before it is read."""
    path, flag = options.measurements, f"--measurements {options.measurements}"
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # np.load's advice to unpickle is not for a user's data file
        detail = getattr(error, "strerror", None) or "no .npy header: a text, pickled or truncated file"
        raise UsageError(f"{flag} is not a NumPy .npy array ({detail}); save the measurements with numpy.save.") from None
    shape, expected = tuple(mapped.shape), tuple(operator.measurement_shape)
    if shape not in (expected, (1, *expected)):
        raise UsageError(f"{flag} has shape {shape}; the operator {setting_name(options)} at "
                         f"{operator.image_shape[-1]} pixels measures {expected} (one image).")
    complex_wanted = bool(getattr(operator, "measurement_is_complex", False))
    if not np.issubdtype(mapped.dtype, np.number) or np.iscomplexobj(mapped) != complex_wanted:
        wanted = "complex k-space (MRI)" if complex_wanted else "a real sinogram (CT)"
        raise UsageError(f"{flag} holds {mapped.dtype} values; --operator {options.operator} measures {wanted}.")
    y = torch.from_numpy(np.array(mapped)).reshape(1, *expected)
    bad = int((~torch.isfinite(y)).sum())
    if bad:
        raise UsageError(f"{flag} holds {bad} NaN or infinite value(s) of {y.numel()}; pass finite measurements.")
    return y.to(torch.complex64 if y.is_complex() else torch.float32)


def measure(options: ReconstructOptions, scan: Scan | None, operator, noise):
    """``(y, noise_std, off_grid)``: given measurements, or the scan measured off the grid (with noise)."""
    if options.measurements is not None:
        return load_measurements(options, operator), options.noise_std, None
    measurement = simulate(operator, scan.truth, noise, options.seed, scan.fine)  # the library's simulation, as the book's
    return measurement.y, measurement.noise_std, scan.fine is not None


def run(options: ReconstructOptions, prior, operator, y, noise_std, method: str, method_options: dict):
    """``samples`` posterior samples in one batch, with a progress bar over the sampler's steps. The library's
    refusal of the method's options or of the noise level (a ValueError naming them) is the options' error."""
    try:
        steps = METHODS[method].settings(method_options).get("steps")
    except ValueError as error:
        raise UsageError(f"--option/--tuned: {error}") from None
    ys = y.expand(options.samples, *y.shape[1:]).contiguous().to(options.device)
    with tqdm(total=steps, desc=f"{method} x{options.samples}", unit="step", mininterval=1.0) as bar:
        try:
            x, record = reconstruct(ys, operator, prior, method, noise_std=noise_std, seed=options.seed,
                                    callback=lambda _: bar.update(1), **method_options)
        except ValueError as error:
            raise UsageError(f"--method {method} with {method_options or 'its defaults'}: "
                             f"{str(error).splitlines()[0]}") from None
    return x.cpu(), record


def report_of(options: ReconstructOptions, scan, y, x, record, off_grid, method, seconds) -> dict:
    o, mean = options, x.mean(0, keepdim=True)
    report = {"prior": o.prior, "input": None if o.input is None else str(o.input),
              "measurements": None if o.measurements is None else str(o.measurements),
              "setting": setting_name(o), "noise": o.noise, "method": method, "settings": record.settings,
              "samples": o.samples, "seed": o.seed, "off_grid": off_grid,
              "nfe_per_sample": record.nfe, "seconds": round(seconds, 2),
              "residual": float(record.residual.mean()), "device": str(o.device),
              "precision": resolve_precision(o.precision, o.device)}
    if o.samples > 1:
        report["spread_mean"] = float(x.std(0).mean())
    if off_grid is False:
        report["warning"] = ("measured on the reconstruction grid (the scan is smaller than twice the prior's grid): "
                             "the inverse crime flatters every method")
    if scan is not None:
        report.update(psnr_of_mean=float(psnr(mean.clamp(0, 1), scan.truth)),
                      ssim_of_mean=float(ssim(mean.clamp(0, 1), scan.truth)),
                      psnr_per_sample=[float(v) for v in psnr(x.clamp(0, 1), scan.truth.expand_as(x))],
                      psnr_classical=float(psnr(scan.classical.clamp(0, 1), scan.truth)))
        if o.samples > 1:  # does the spread say where the error is?
            error = (mean.clamp(0, 1) - scan.truth).abs().flatten()
            report["spread_error_correlation"] = float(torch.corrcoef(torch.stack([x.std(0).flatten(), error]))[0, 1])
    return report


def the_scan(options: ReconstructOptions, card: dict, size: int) -> Scan | None:
    """``--input`` read for the prior (None without one)."""
    if options.input is None:
        return None
    try:
        return read_scan(options.input, card, size, index=options.slice, modality=options.modality,
                         window=options.window, percentile=options.percentile)
    except DataFolderError as error:
        raise UsageError(f"--input {options.input}: {error}") from None


def main(argv=None) -> dict:
    """Run one reconstruction (see the module's docstring); returns its report. Expected errors are
    :class:`~recon.cli.errors.UsageError` (``python -m recon.reconstruct`` prints them as one line)."""
    options = parse_options(argv)
    check_out(options)
    start = time.perf_counter()
    path, card, size = prior_card(options.prior)
    method, method_kwargs = method_options(options)
    needs_prior = method is None or METHODS[method].needs_prior  # the default methods need one
    check_resources(options, size, needs_prior)
    operator = the_operator(options, size)
    noise = parse_noise(options.noise, options.operator) if options.measurements is None else None
    prior = prior_network(options.prior, path, options.device, options.precision) if needs_prior else None
    scan = the_scan(options, card, size)
    y, noise_std, off_grid = measure(options, scan, operator, noise)
    if scan is not None:
        scan.classical = classical(operator, y).float().cpu()
    method = method or ("proximal" if noise_std == 0 else "proximal_ddrm")
    x, record = run(options, prior, operator, y, noise_std, method, method_kwargs)
    report = report_of(options, scan, y, x, record, off_grid, method, time.perf_counter() - start)
    write_outputs(options, scan, y, x, report)
    print(json.dumps({k: report[k] for k in ("psnr_of_mean", "psnr_classical", "residual", "nfe_per_sample",
                                             "seconds") if k in report}))
    return report


def write_outputs(options: ReconstructOptions, scan, y, x, report) -> None:
    """The files of the module's docstring, each written atomically into the marked ``--out`` folder."""
    clear_previous(options)
    out, spread = mark_output(options.out), x.std(0)[0].numpy() if options.samples > 1 else None
    mean = x.mean(0)[0].clamp(0, 1).numpy()  # the images' range; samples.npy keeps the raw samples
    write_npy(out / "recon.npy", mean.astype(np.float32))
    write_npy(out / "samples.npy", x[:, 0].numpy().astype(np.float32))
    write_npy(out / "measurements.npy", y.cpu().numpy())
    write_png(out / "recon.png", mean)
    written = ["recon.npy", "samples.npy", "measurements.npy", "recon.png"]
    if spread is not None:
        write_npy(out / "spread.npy", spread.astype(np.float32))
        report["spread_png_max"] = write_png(out / "spread.png", spread, scale_to_max=True)
        written += ["spread.npy", "spread.png"]
    if scan is not None:
        write_npy(out / "truth.npy", scan.truth[0, 0].numpy())
        write_png(out / "truth.png", scan.truth[0, 0].numpy())
        write_png(out / "classical.png", scan.classical[0, 0].numpy())
        write_summary(out / "summary.png", scan, mean, spread, report)
        report["written_like_input"] = write_like_input(out, scan, mean)
        written += ["truth.npy", "truth.png", "classical.png", "summary.png", report["written_like_input"]]
    report["files"] = sorted(name for name in [*written, "report.json"] if name)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    run_program(PROG, main, sys.argv[1:])
