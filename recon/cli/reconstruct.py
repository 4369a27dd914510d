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
from recon.operators.noise import ComplexGaussianMRI, PoissonCT, RelativeGaussian
from recon.operators.settings import classical, make_operator
from recon.reconstruction import load_prior, reconstruct

NOISE_FORMS = "none, poisson:PHOTONS (CT), snr:SNR (MRI) or gaussian:LEVEL (a fraction of the data's RMS)"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m recon.reconstruct", description=__doc__.splitlines()[0])
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
    p.add_argument("--method", choices=sorted(METHODS), default=None,
                   help="default: proximal (noise-free) or proximal_ddrm (noisy)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, e.g. lam=0.6 or steps=100 (repeatable; see recon.describe_methods())")
    p.add_argument("--tuned", type=Path, default=None, help="a tuning result (python -m recon.tune --result FILE)")
    p.add_argument("--samples", type=int, default=4,
                   help="posterior samples: their mean is the reconstruction, their spread (2 or more) the uncertainty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modality", choices=MODALITIES, default=None, help="default: the prior's data card, else auto")
    p.add_argument("--window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help=f"CT window in HU (default: the prior's data card, else {DEFAULT_WINDOW})")
    p.add_argument("--percentile", type=float, default=None, help="MRI: per-volume intensity mapped to 1")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.input is None and args.measurements is None:
        p.error("pass --input (a scan to measure) or --measurements (a .npy of measurements), or both")
    if args.samples < 1:
        p.error(f"--samples must be at least 1; got {args.samples}")
    return args


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


def parse_options(args) -> dict:
    """The method's options: a tuning result's best values, then ``--option`` pairs (which win)."""
    options = {}
    if args.tuned is not None:
        tuned = json.loads(args.tuned.read_text())
        options.update(tuned["fixed"], **tuned["best"])
        args.method = args.method or tuned["method"]
    return {**options, **key_values(args.option, "--option", "lam=0.6")}


def setting_name(args) -> str:
    if args.operator == "ct":
        return f"ct:{args.views}" + ("" if args.arc == 180.0 else f":{args.arc:g}")
    return f"mri:{args.acceleration:g}:{args.pattern}"


def measure(args, scan: Scan | None, operator, noise):
    """``(y, noise_std, off_grid)``: given measurements, or the scan measured off the grid (with noise)."""
    if args.measurements is not None:
        y = torch.from_numpy(np.load(args.measurements))
        y = y[None] if y.dim() == len(operator.measurement_shape) else y
        if tuple(y.shape[1:]) != tuple(operator.measurement_shape) or y.shape[0] != 1:
            raise SystemExit(f"--measurements {args.measurements} has shape {tuple(y.shape)}; the operator "
                             f"{setting_name(args)} at {operator.image_shape[-1]} pixels measures "
                             f"{tuple(operator.measurement_shape)} (one image).")
        return y.to(torch.complex64 if y.is_complex() else torch.float32), args.noise_std, None
    clean = operator.A_fine(scan.fine) if scan.fine is not None else operator.A(scan.truth)
    if noise is None:
        return clean, 0.0, scan.fine is not None
    y, std = noise(operator, clean, scan.truth, torch.Generator().manual_seed(args.seed))
    return y, std, scan.fine is not None


def run(args, prior, operator, y, noise_std, method: str, options: dict):
    """``samples`` posterior samples in one batch, with a progress bar over the sampler's steps."""
    steps = METHODS[method].settings(options).get("steps")
    ys = y.expand(args.samples, *y.shape[1:]).contiguous().to(args.device)
    with tqdm(total=steps, desc=f"{method} x{args.samples}", unit="step", mininterval=1.0) as bar:
        x, record = reconstruct(ys, operator, prior, method, noise_std=noise_std, seed=args.seed,
                                callback=lambda _: bar.update(1), **options)
    return x.cpu(), record


def report_of(args, scan, y, x, record, off_grid, method, prior_name, seconds) -> dict:
    mean = x.mean(0, keepdim=True)
    report = {"prior": prior_name, "input": None if args.input is None else str(args.input),
              "measurements": None if args.measurements is None else str(args.measurements),
              "setting": setting_name(args), "noise": args.noise, "method": method, "settings": record.settings,
              "samples": args.samples, "seed": args.seed, "off_grid": off_grid,
              "nfe_per_sample": record.nfe, "seconds": round(seconds, 2),
              "residual": float(record.residual.mean()), "device": str(args.device),
              "precision": resolve_precision(args.precision, args.device)}
    if args.samples > 1:
        report["spread_mean"] = float(x.std(0).mean())
    if off_grid is False:
        report["warning"] = ("measured on the reconstruction grid (the scan is smaller than twice the prior's grid): "
                             "the inverse crime flatters every method")
    if scan is not None:
        report.update(psnr_of_mean=float(psnr(mean.clamp(0, 1), scan.truth)),
                      ssim_of_mean=float(ssim(mean.clamp(0, 1), scan.truth)),
                      psnr_per_sample=[float(v) for v in psnr(x.clamp(0, 1), scan.truth.expand_as(x))],
                      psnr_classical=float(psnr(scan.classical.clamp(0, 1), scan.truth)))
        if args.samples > 1:  # does the spread say where the error is?
            error = (mean.clamp(0, 1) - scan.truth).abs().flatten()
            report["spread_error_correlation"] = float(torch.corrcoef(torch.stack([x.std(0).flatten(), error]))[0, 1])
    return report


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    path = resolve(args.prior)
    card = load_card(path)
    size = card["config"]["image_size"]
    operator = make_operator(setting_name(args), size, seed=args.mask_seed)
    noise = parse_noise(args.noise, args.operator) if args.measurements is None else None
    try:
        scan = None if args.input is None else read_scan(args, card, size)
    except DataFolderError as error:
        raise SystemExit(f"--input {args.input}: {error}") from None
    y, noise_std, off_grid = measure(args, scan, operator, noise)
    if scan is not None:
        scan.classical = classical(operator, y).float().cpu()
    options = parse_options(args)
    method = args.method or ("proximal" if noise_std == 0 else "proximal_ddrm")
    prior = load_prior(str(path), args.device, args.precision)
    x, record = run(args, prior, operator, y, noise_std, method, options)
    args.out.mkdir(parents=True, exist_ok=True)
    report = report_of(args, scan, y, x, record, off_grid, method, args.prior, time.perf_counter() - start)
    write_outputs(args, scan, y, x, report)
    print(json.dumps({k: report[k] for k in ("psnr_of_mean", "psnr_classical", "residual", "nfe_per_sample",
                                             "seconds") if k in report}))
    return report


def write_outputs(args, scan, y, x, report) -> None:
    out, spread = args.out, x.std(0)[0].numpy() if args.samples > 1 else None
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
