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
the measurement residual, network evaluations, seconds, the settings, the device and precision).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from recon.cli.arguments import key_values
from recon.cli.images import Scan, read_scan, write_like_input, write_png, write_summary
from recon.data.folder import DEFAULT_WINDOW, MODALITIES, DataFolderError
from recon.methods import METHODS
from recon.metrics import psnr, ssim
from recon.models.checkpoints import load_card, resolve
from recon.models.precision import PRECISIONS
from recon.models.precision import resolve as resolve_precision
from recon.operators.masks import MASK_PATTERNS
from recon.operators.noise import ComplexGaussianMRI, PoissonCT, RelativeGaussian, simulate
from recon.operators.settings import classical, make_operator
from recon.reconstruction import load_prior, reconstruct

NOISE_FORMS = "none, poisson:PHOTONS (CT), snr:SNR (MRI) or gaussian:LEVEL (a fraction of the data's RMS)"


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


def parse_options(argv=None) -> ReconstructOptions:
    p = argparse.ArgumentParser(prog="python -m recon.reconstruct", description=__doc__.splitlines()[0])
    add_problem_arguments(p)
    add_method_arguments(p)
    add_scan_arguments(p)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.input is None and args.measurements is None:
        p.error("pass --input (a scan to measure) or --measurements (a .npy of measurements), or both")
    if args.samples < 1:
        p.error(f"--samples must be at least 1; got {args.samples}")
    return ReconstructOptions(**{**vars(args), "option": tuple(args.option),
                                 "window": None if args.window is None else tuple(args.window)})


def add_problem_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prior", required=True, help="a shipped prior's name (head_ct, brain, ...) or a checkpoint folder")
    p.add_argument("--input", type=Path, help="the scan to measure (DICOM, NIfTI, PNG, .npy); the truth for scores")
    p.add_argument("--measurements", type=Path, help="given measurements (.npy) instead of simulating them")
    p.add_argument("--slice", type=int, default=None,
                   help="which slice of a volume (its z index) or multi-frame file (default: the middle one)")
    p.add_argument("--operator", choices=("ct", "mri"), required=True)
    p.add_argument("--views", type=int, default=16, help="CT: projection views over --arc degrees")
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
        raise SystemExit(f"--noise {text!r} is not understood; write {NOISE_FORMS}.")
    if (kind, operator) in (("poisson", "mri"), ("snr", "ct")):
        raise SystemExit(f"--noise {text!r}: {kind} noise belongs to the other modality; write {NOISE_FORMS}.")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise SystemExit(f"--noise {text!r}: give a positive number after '{kind}:'; write {NOISE_FORMS}.")
    return models[kind](number)


def method_options(options: ReconstructOptions) -> tuple[str | None, dict]:
    """``(method, its options)``: ``--method``, else a tuning result's (None: neither says); the options are the
    tuning result's best values, then ``--option`` pairs (which win)."""
    tuned_options, method = {}, options.method
    if options.tuned is not None:
        tuned = json.loads(options.tuned.read_text())
        tuned_options.update(tuned["fixed"], **tuned["best"])
        method = method or tuned["method"]
    return method, {**tuned_options, **key_values(list(options.option), "--option", "lam=0.6")}


def setting_name(options: ReconstructOptions) -> str:
    if options.operator == "ct":
        return f"ct:{options.views}" + ("" if options.arc == 180.0 else f":{options.arc:g}")
    return f"mri:{options.acceleration:g}:{options.pattern}"


def measure(options: ReconstructOptions, scan: Scan | None, operator, noise):
    """``(y, noise_std, off_grid)``: given measurements, or the scan measured off the grid (with noise)."""
    if options.measurements is not None:
        y = torch.from_numpy(np.load(options.measurements))
        y = y[None] if y.dim() == len(operator.measurement_shape) else y
        if tuple(y.shape[1:]) != tuple(operator.measurement_shape) or y.shape[0] != 1:
            raise SystemExit(f"--measurements {options.measurements} has shape {tuple(y.shape)}; the operator "
                             f"{setting_name(options)} at {operator.image_shape[-1]} pixels measures "
                             f"{tuple(operator.measurement_shape)} (one image).")
        return y.to(torch.complex64 if y.is_complex() else torch.float32), options.noise_std, None
    measurement = simulate(operator, scan.truth, noise, options.seed, scan.fine)  # the library's simulation, as the book's
    return measurement.y, measurement.noise_std, scan.fine is not None


def run(options: ReconstructOptions, prior, operator, y, noise_std, method: str, method_options: dict):
    """``samples`` posterior samples in one batch, with a progress bar over the sampler's steps."""
    steps = METHODS[method].settings(method_options).get("steps")
    ys = y.expand(options.samples, *y.shape[1:]).contiguous().to(options.device)
    with tqdm(total=steps, desc=f"{method} x{options.samples}", unit="step", mininterval=1.0) as bar:
        x, record = reconstruct(ys, operator, prior, method, noise_std=noise_std, seed=options.seed,
                                callback=lambda _: bar.update(1), **method_options)
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
        raise SystemExit(f"--input {options.input}: {error}") from None


def main(argv=None) -> dict:
    options = parse_options(argv)
    start = time.perf_counter()
    path = resolve(options.prior)
    card = load_card(path)
    size = card["config"]["image_size"]
    operator = make_operator(setting_name(options), size, seed=options.mask_seed)
    noise = parse_noise(options.noise, options.operator) if options.measurements is None else None
    scan = the_scan(options, card, size)
    y, noise_std, off_grid = measure(options, scan, operator, noise)
    if scan is not None:
        scan.classical = classical(operator, y).float().cpu()
    method, method_kwargs = method_options(options)
    method = method or ("proximal" if noise_std == 0 else "proximal_ddrm")
    prior = load_prior(str(path), options.device, options.precision)
    x, record = run(options, prior, operator, y, noise_std, method, method_kwargs)
    options.out.mkdir(parents=True, exist_ok=True)
    report = report_of(options, scan, y, x, record, off_grid, method, time.perf_counter() - start)
    write_outputs(options, scan, y, x, report)
    print(json.dumps({k: report[k] for k in ("psnr_of_mean", "psnr_classical", "residual", "nfe_per_sample",
                                             "seconds") if k in report}))
    return report


def write_outputs(options: ReconstructOptions, scan, y, x, report) -> None:
    out, spread = options.out, x.std(0)[0].numpy() if options.samples > 1 else None
    mean = x.mean(0)[0].clamp(0, 1).numpy()  # the images' range; samples.npy keeps the raw samples
    np.save(out / "recon.npy", mean.astype(np.float32))
    np.save(out / "samples.npy", x[:, 0].numpy().astype(np.float32))
    np.save(out / "measurements.npy", y.cpu().numpy())
    write_png(out / "recon.png", mean)
    if spread is not None:
        np.save(out / "spread.npy", spread.astype(np.float32))
        report["spread_png_max"] = write_png(out / "spread.png", spread, scale_to_max=True)
    if scan is not None:
        np.save(out / "truth.npy", scan.truth[0, 0].numpy())
        write_png(out / "truth.png", scan.truth[0, 0].numpy())
        write_png(out / "classical.png", scan.classical[0, 0].numpy())
        write_summary(out / "summary.png", scan, mean, spread, report)
        report["written_like_input"] = write_like_input(out, scan, mean)
    report["files"] = sorted(p.name for p in out.iterdir())
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
