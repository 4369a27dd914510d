"""The shift chapter's grid (the "one prior, many hospitals" issue): one unconditional prior, guided at inference,
against supervised post-processing networks trained at one setting, at a family of settings, and (oracles) at the
test setting itself, across changes of the scanner (views, limited angle, acceleration, mask family, noise) and of
the anatomy. Every method is scored on the protocol's off-grid test images.

The prior's cost of a shift is measured against itself: λ tuned at the training setting and carried over, against λ
tuned on validation images at the shifted setting (its own level there). A network's cost of a shift is measured
against an oracle (the single-setting network fine-tuned at the shifted setting) where one ships, and everywhere
against the prior; :mod:`studies.shift_report` computes these from the results. This module owns the grid, the
networks' names and training commands, and the rows at a point; tuning and testing are the protocol's.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from recon.models.checkpoints import shipped_folder
from recon.operators.noise import ComplexGaussianMRI, PoissonCT
from recon.operators.settings import make_operator, parse_setting
from recon.tuning import Range, Tuned
from studies import protocol
from studies.protocol import Choice


@dataclasses.dataclass(frozen=True)
class Shift:
    """One point of the grid: a setting name (:func:`recon.operators.settings.make_operator`), the data family, the
    noise model (None: noise-free), the axis it belongs to and its value on that axis (for the curves)."""

    setting: str
    dataset: str
    axis: str
    value: float
    noise: object = None

    def task(self, seed: int = 0) -> protocol.Task:
        operator = make_operator(self.setting, seed=seed)
        classical = "fbp" if self.dataset == "head_ct" else "zero_filled"
        return protocol.Task(self.setting, operator, self.dataset, self.noise, classical=classical)


def setting_tag(setting: str) -> str:
    """A canonical short name of a setting for checkpoint names: ``ct:16`` -> ``ct16``, ``ct:16:90`` -> ``ct16_arc90``,
    ``mri:4`` and ``mri:4:random`` -> ``mri4_random``, ``mri:4:equispaced:rows`` -> ``mri4_equispaced_rows``."""
    kind, p = parse_setting(setting)  # the name alone: no operator is built (this runs at import, for NETWORKS)
    if kind == "ct":
        return f"ct{p['n_views']}" + ("" if p["arc"] == 180 else f"_arc{p['arc']:g}")
    tag = f"mri{p['acceleration']:g}_{p['pattern']}"
    return tag + ("" if p["orientation"] == "columns" else "_rows")


def network_name(dataset: str, setting: str) -> str:
    """The checkpoint name of a network trained at one setting (``head_ct_sup_ct16``)."""
    return f"{dataset}_sup_{setting_tag(setting)}"


# The family networks' settings (the issue: views 8-32; accelerations 2-8 with mixed mask families and orientations),
# and the grid points where an oracle network is fine-tuned, to separate the cost of a shift from the problem's difficulty.
FAMILY = {"head_ct": [f"ct:{v}" for v in (8, 10, 12, 16, 20, 24, 32)],
          "brain": [f"mri:{a}:{p}" + o for a in (2, 3, 4, 6, 8) for p in ("random", "equispaced", "variable_density")
                    for o in ("", ":rows")]}
ORACLES = {"head_ct": ["ct:10", "ct:25"], "brain": ["mri:8:equispaced"]}
ORACLE_STEPS = 200  # an oracle is the single-setting network fine-tuned at its setting for this many steps

# Where each single-setting network was trained (and the prior's λ first tuned), and the networks compared.
TRAINED_AT = {"head_ct": "ct:16", "brain": "mri:4:equispaced"}
NETWORKS = {data: {"single": network_name(data, setting), "family": f"{data}_sup_family"}
            for data, setting in TRAINED_AT.items()}


def shift_grid() -> list[Shift]:
    """The operator-shift grid (26 points): CT views 6-90, limited-angle scans (90 and 150 degrees), the post's two
    hospitals (10 and 25 views), low-dose noise (10^4 and 3 x 10^3 photons); MRI accelerations 2-10 (equispaced), the
    three mask families at 4x and 8x, the phase-encoding direction turned by 90 degrees, noise at SNR 30 and 15."""
    grid = [Shift(f"ct:{v}", "head_ct", "views", v) for v in (6, 8, 10, 16, 25, 32, 60, 90)]
    grid += [Shift(f"ct:16:{a}", "head_ct", "arc (degrees), 16 views", a) for a in (90, 150)]
    grid += [Shift("ct:8:90", "head_ct", "arc (degrees), 8 views", 90)]  # the same angle between views as ct:16
    grid += [Shift("ct:16", "head_ct", "photons per bin (16 views)", f, PoissonCT(flux=f)) for f in (1e4, 3e3)]
    grid += [Shift(f"mri:{a}:equispaced", "brain", "acceleration (equispaced)", a) for a in (2, 4, 6, 8, 10)]
    grid += [Shift(f"mri:{a}:{p}", "brain", f"mask family at {a}x", a) for a in (4, 8)
             for p in ("random", "variable_density")]
    grid += [Shift(f"mri:{a}:equispaced:rows", "brain", "phase encoding turned (equispaced)", a) for a in (4, 8)]
    grid += [Shift("mri:4:equispaced", "brain", "SNR (4x equispaced)", s, ComplexGaussianMRI(snr=s))
             for s in (30.0, 15.0)]
    return grid


def oracle_name(shift: Shift) -> str | None:
    """The name an oracle network fine-tuned at this point's setting would ship under (it may not exist); None at a noise
    point, since every network is trained on noise-free data (an oracle there would need noisy training pairs)."""
    return None if shift.noise is not None else network_name(shift.dataset, shift.setting)


def available(name: str | None) -> bool:
    """Whether a shipped checkpoint of that name exists."""
    from recon.models.checkpoints import resolve

    if name is None:
        return False
    try:
        resolve(name)
    except FileNotFoundError:
        return False
    return True


def tune_lambda(task: protocol.Task, prior, *, nfe: int, n_val: int, n_trials: int, seed: int, device="cpu",
                search: str = "tpe") -> Tuned:
    """λ of the task's proximal method (Song et al.'s step, or the DDRM rule on noisy data) tuned on validation images
    at ``nfe`` Euler–Maruyama levels, by the protocol's study (``search``: :func:`recon.tuning.search_plan`'s; "protocol"
    puts λ on its 13-point grid)."""
    method = task.score_methods()[0]
    choice = {method: Choice(method, protocol.budget_options(method, nfe), prior)}
    return protocol.tune_all(task, choice, n_val=n_val, n_trials=n_trials, seed=seed, device=device,
                             search=search)[method]


def tune_truncated(task: protocol.Task, prior, *, nfe: int, n_val: int, n_trials: int, seed: int, device="cpu") -> Tuned:
    """λ and the proximal step's pseudo-inverse cut-off ``rcond`` (:meth:`LinearOperator.prox`) tuned together on
    validation images, by the protocol's study, at ``nfe`` Euler–Maruyama levels (noise-free data)."""
    space = {"lam": Range(0.0, 1.0), "rcond": Range(1e-6, 1e-1, log=True)}
    choice = {"proximal, truncated": Choice("proximal", protocol.budget_options("proximal", nfe), prior)}
    return protocol.tune_all(task, choice, n_val=n_val, n_trials=n_trials, seed=seed, device=device,
                             space=space)["proximal, truncated"]


def source_task(shift: Shift, seed: int = 0) -> protocol.Task:
    """The training setting with the noise model of this point's kind (none, or the protocol's), where the carried-over
    λ is tuned."""
    noise = None if shift.noise is None else (protocol.LOW_DOSE if shift.dataset == "head_ct" else protocol.MRI_SNR)
    return Shift(TRAINED_AT[shift.dataset], shift.dataset, "source", 0.0, noise).task(seed)


def spread(data: protocol.Measured, choice: Choice, *, k: int, seed: int, device="cpu") -> dict:
    """The prior's posterior spread on test images (``k`` samples of each with the choice's method and options):
    the error of the posterior mean, the mean spread, 90 % interval coverage and corr(spread, error)."""
    from recon.metrics import psnr
    from studies.uncertainty import posterior_samples, summarize

    samples = posterior_samples(data.measurement.to(device), choice.prior, choice.method, k=k, seed=seed,
                                **choice.options).cpu()
    report = summarize(samples, data.truth)
    rmse = (report.mean - data.truth).flatten(1).pow(2).mean(1).sqrt()
    sample_psnr = torch.stack([psnr(sample, data.truth) for sample in samples]).mean(0)  # one sample, averaged over k
    return {"rmse": rmse.tolist(), "std": report.std.flatten(1).mean(1).tolist(), "coverage": report.coverage.tolist(),
            "correlation": report.std_error_correlation.tolist(), "mean_psnr": report.psnr_mean.tolist(),
            "sample_psnr": sample_psnr.tolist()}


def prior_point(shift: Shift, prior, carried: Tuned, *, nfe: int, n_images: int, n_val: int, n_trials: int,
                seed: int, spread_k: int = 8, spread_images: int = 8, device="cpu", search: str = "tpe") -> dict:
    """The prior at one grid point on its off-grid test images: λ carried over from the training setting and λ tuned
    here, the classical inverse beside them, and the prior's posterior spread (λ carried over) on the first
    ``spread_images``. At the source task itself (the training setting with the source's noise) nothing is shifted
    for the prior: λ tuned here is the carried λ, and the point says so (``"source": True``). The networks' rows are
    added by :func:`network_rows` (cheap: one evaluation each)."""
    start = time.perf_counter()
    task = shift.task(seed)
    data = protocol.measured(task, n_images, seed)
    is_source = task.key == source_task(shift, seed).key
    tuned_here = carried if is_source else tune_lambda(task, prior, nfe=nfe, n_val=n_val, n_trials=n_trials,
                                                       seed=seed, device=device, search=search)
    runs = {"prior, λ carried over": Choice.tuned(carried, prior), "prior, λ tuned here": Choice.tuned(tuned_here, prior),
            task.classical: Choice(task.classical, {})}
    rows = protocol.evaluate_all(data, runs, seed=seed, device=device)
    posterior = spread(protocol.measured(task, spread_images, seed), runs["prior, λ carried over"], k=spread_k,
                       seed=seed, device=device)
    return {"setting": shift.setting, "dataset": shift.dataset, "axis": shift.axis, "value": shift.value,
            "noise": task.noise_name, "noise_std": data.measurement.noise_std, "rows": rows, "spread": posterior,
            "tuned": {"carried": carried, "here": tuned_here}, "source": is_source,
            "seconds": round(time.perf_counter() - start, 1)}


def network_rows(shift: Shift, *, n_images: int, seed: int, device="cpu") -> dict[str, protocol.Row]:
    """The supervised networks at one grid point, on the same test measurements as :func:`prior_point`: the
    single-setting and family networks, and the oracle fine-tuned at this setting where one ships."""
    names = dict(NETWORKS[shift.dataset], oracle=oracle_name(shift))
    runs = {f"network ({kind})": Choice("supervised", {"network": name}) for kind, name in names.items()
            if available(name) and (kind != "oracle" or name != NETWORKS[shift.dataset]["single"])}
    return protocol.evaluate_all(protocol.measured(shift.task(seed), n_images, seed), runs, seed=seed, device=device)


def anatomy_images(seed: int = 0, n_shift: int = 32) -> dict[str, tuple[str, torch.Tensor]]:
    """The anatomy-shift panel: ``label -> (data family whose prior and networks apply, images)``. The brain prior's
    anatomy-shift test slices, pydicom's real MR slice, and for CT pydicom's real CT slice and the Shepp–Logan
    phantom; each family's own test images first, as the in-distribution reference. All are measured on the grid (no
    finer rendering exists for the real slices), at the training settings, so the reference rows are on-grid too."""
    from recon.data import ct_small, fine_and_truth, mr_small, shepp_logan

    shift_slices, _ = fine_and_truth("brain", n_shift, 64, "test_shift", seed)
    return {"head CT phantoms, test (in-distribution)": ("head_ct", fine_and_truth("head_ct", n_shift, 64, "test", seed)[0]),
            "real CT slice (pydicom CT_small)": ("head_ct", ct_small()), "Shepp–Logan": ("head_ct", shepp_logan()),
            "brain slices, test (in-distribution)": ("brain", fine_and_truth("brain", n_shift, 64, "test", seed)[0]),
            "brain, anatomy-shift slabs": ("brain", shift_slices), "real MR slice (pydicom MR_small)": ("brain", mr_small())}


def anatomy_panel(priors: dict, carried: dict[str, dict], *, seed: int = 0, device="cpu") -> dict:
    """Every method on the anatomy-shift images at the training settings (noise-free): the prior with the λ tuned at
    the training setting (``carried``: options per data family), the two networks, the classical inverse; per-image
    PSNR and SSIM."""
    from recon.operators.noise import simulate

    out = {}
    for label, (dataset, images) in anatomy_images(seed).items():
        task = Shift(TRAINED_AT[dataset], dataset, "anatomy", 0.0).task(seed)
        runs = {"prior, λ from the training setting": Choice(task.score_methods()[0], carried[dataset], priors[dataset]),
                task.classical: Choice(task.classical, {})}
        runs.update({f"network ({kind})": Choice("supervised", {"network": name})
                     for kind, name in NETWORKS[dataset].items() if available(name)})
        data = protocol.Measured(images, simulate(task.operator, images))  # on the grid: no finer rendering exists
        rows = protocol.evaluate_all(data, runs, seed=seed, device=device)
        out[label] = {row: {"psnr": r.psnr, "ssim": r.ssim} for row, r in rows.items()}
    return out


def network_commands(steps: int = 2000, n_train: int = 4096, device: str | None = None) -> list[tuple[str, list[str]]]:
    """``(checkpoint folder, train arguments)`` of every supervised network the shift chapter uses: the single-setting
    and family networks, each with the prior's data and step budget, then the oracles, each the single-setting network
    fine-tuned at its own setting for ``ORACLE_STEPS`` steps on a quarter of the data (model adaptation, as Gilton et
    al. adapt a trained network to a new forward model)."""
    common = ["--size", "64", "--batch", "32", "--checkpoint-every", "100"] + (["--device", device] if device else [])
    out = []
    for data in ("head_ct", "brain"):
        single = "checkpoints/" + shipped_folder(network_name(data, TRAINED_AT[data]))
        runs = {single: [TRAINED_AT[data]], f"checkpoints/{data}_64_sup_family": FAMILY[data]}
        for folder, settings in runs.items():
            out.append((folder, ["--data", data, "--loss", "supervised", "--settings", *settings, *common, "--steps",
                                 str(steps), "--n-train", str(n_train), "--out", folder]))
        for setting in ORACLES[data]:
            folder = "checkpoints/" + shipped_folder(network_name(data, setting))
            out.append((folder, ["--data", data, "--loss", "supervised", "--settings", setting, "--init", single,
                                 *common, "--steps", str(ORACLE_STEPS), "--n-train", str(n_train // 4),
                                 "--out", folder]))
    return out
