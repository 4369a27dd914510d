"""The methods behind :func:`recon.reconstruct`, registered by name, each with what the tuner and the protocol need.

Each method is a small function ``method(problem, *, option=default, ...) -> x`` of a :class:`Problem` (measurements,
operator, prior, noise level, generators, callback) with typed keyword options; :func:`register_method` adds it to
:data:`METHODS` under a name together with its search space (a :class:`Range` per free option), the option that
sets its network-evaluation budget, its cost per step, and which of its options the fixed ones make idle: one
registration holds all a method knows (as k-diffusion's sampler table and deepinv's samplers describe themselves).
The score-based methods are a guide (:mod:`recon.guidance`) over a sampler (:mod:`recon.sampling`); the baselines
are classical solvers.

The defaults are starting points (chosen early on validation images with half-trained priors); the book's evaluation
protocol (:mod:`studies.protocol`) tunes every free parameter per setting and reports the values it chose.
TV's default weight is the operator's ``default_tv_weight``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
from collections.abc import Callable
from pathlib import Path

import torch

from recon._checks import check_positive_int
from recon.baselines import tv_least_squares
from recon.guidance import DDRMProximalGuide, DPSGuide, EstimateProjectionGuide, Guide, ProximalGuide, ReplacementGuide
from recon.guidance.path import PathFilterGuide, PathGridGuide, ReusingDenoiser, evaluations_per_step
from recon.models.consistency import is_consistency_model
from recon.models.denoiser import Denoiser
from recon.operators.base import LinearOperator
from recon.random import Generators, generators, randn, seeds_for
from recon.sampling.loops import EVALUATIONS_PER_LEVEL, SAMPLERS
from recon.sampling.schedules import (
    DEFAULT_RENOISE,
    SIGMA_MAX,
    SIGMA_MIN,
    get_sigmas_consistency,
    get_sigmas_karras,
)


@dataclasses.dataclass(frozen=True)
class Range:
    """A search range of one option, ``low`` to ``high``; ``log`` searches uniformly in the logarithm.

    >>> Range(1e-3, 1e3, log=True).at_bound(1.0), Range(0.0, 1.0).at_bound(0.99)
    (False, True)
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        if not self.low < self.high or (self.log and not self.low > 0):
            raise ValueError(f"a range needs low < high (and low > 0 with log=True); got {self}.")

    def grid(self, n: int) -> list[float]:
        """``n`` points from ``low`` to ``high``, both included, evenly spaced (in the logarithm if ``log``).

        >>> Range(1e-2, 1e2, log=True).grid(5)
        [0.01, 0.1, 1.0, 10.0, 100.0]
        """
        if n < 2:
            raise ValueError(f"a grid needs at least 2 points (both bounds); got {n}.")
        f, g = (math.log, math.exp) if self.log else (float, float)
        a, b = f(self.low), f(self.high)
        return [float(f"{g(a + (b - a) * i / (n - 1)):.12g}") for i in range(n)]

    def at_bound(self, value: float, margin: float = 0.05) -> bool:
        """Whether ``value`` lies within ``margin`` of the range's width (in log units if ``log``) of a bound."""
        f = math.log if self.log else float
        width = f(self.high) - f(self.low)
        return min(f(value) - f(self.low), f(self.high) - f(value)) < margin * width


# The Langevin corrector's signal-to-noise ratio (Song et al. 2021), searched when a method runs the "pc" sampler.
LANGEVIN_SNR = Range(0.01, 10.0, log=True)


@dataclasses.dataclass
class MethodReport:
    """The one place a method reports back to :func:`recon.reconstruct` what the options alone do not say: the
    ``settings`` it resolved while running (a sampler's default ``snr``, a path's ``history``), which join the
    record's settings, and the evaluations per image of networks other than the prior (``other_nfe``; a supervised
    network: one), which join its NFE."""

    settings: dict = dataclasses.field(default_factory=dict)
    other_nfe: int = 0

    def resolved(self, name: str, value):
        """Report ``value`` as the setting ``name`` ran with; returns it."""
        self.settings[name] = value
        return value

    def ran_network(self, evaluations: int = 1) -> None:
        """Report ``evaluations`` per image of a network other than the prior."""
        self.other_nfe += evaluations


@dataclasses.dataclass
class Problem:
    """What every method receives: measurements ``y`` of ``operator``, the ``prior`` (or None), the measurement noise
    standard deviation, per-sample generators and the sampler callback; the method writes what it resolved and what
    other networks it ran into ``report`` (:class:`MethodReport`), and nowhere else."""

    y: torch.Tensor
    operator: LinearOperator
    prior: Denoiser | None
    noise_std: float
    generator: Generators
    callback: Callable | None = None
    report: MethodReport = dataclasses.field(default_factory=MethodReport)

    def require_prior(self, score: bool = True) -> Denoiser:
        """The prior, checked against the operator's image size; with ``score``, refused if it is a consistency model
        (whose output is no posterior mean, so it gives no score)."""
        prior = self.prior
        if prior is None:
            raise ValueError("this method needs a prior: pass prior=recon.load_prior('head_ct') (or 'brain', or a path).")
        if score and is_consistency_model(prior):
            raise ValueError("this method reads the prior's score, which a consistency model does not give; use "
                             "method='consistency' with it, or a diffusion prior (recon.load_prior('head_ct')).")
        if prior.image_size is not None and self.operator.image_shape != (prior.image_size, prior.image_size):
            raise ValueError(
                f"the operator works on {self.operator.image_shape} images but the prior was trained at "
                f"{prior.image_size}x{prior.image_size}; build the operator with image_size={prior.image_size} or "
                "train a prior at this size."
            )
        return prior

    def initial_noise(self, sigma: float) -> torch.Tensor:
        """Pure noise at level ``sigma`` on the measurements' device, one draw per image from its own generator."""
        return sigma * randn((self.y.shape[0], 1, *self.operator.image_shape), self.generator, device=self.y.device)


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered method: its function, whether it needs a prior, and what the tuner and the protocol read.

    Args:
        name: the name :func:`recon.reconstruct` knows it by.
        function: ``function(problem, *, option=default, ...) -> x``.
        needs_prior: whether it runs the prior (a baseline does not).
        space: the free options and the :class:`Range` each is searched over.
        budget: the option that sets the network-evaluation budget (``"steps"``), or None: no budget option.
        nfe_per_step: network evaluations per unit of ``budget``, or a function of the settings that gives it.
        idle: a function of the settings giving the options of ``space`` that they make idle (never read).
    """

    name: str
    function: Callable
    needs_prior: bool = True
    space: dict = dataclasses.field(default_factory=dict)
    budget: str | None = None
    nfe_per_step: int | Callable[[dict], int] = 1
    idle: Callable[[dict], set[str]] | None = None

    @property
    def defaults(self) -> dict:
        """The method's keyword options and their defaults."""
        parameters = inspect.signature(self.function).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}

    @property
    def summary(self) -> str:
        """The first paragraph of the function's docstring, on one line."""
        return " ".join((inspect.getdoc(self.function) or "").split("\n\n")[0].split())

    def settings(self, options: dict) -> dict:
        """The defaults updated by ``options``; an option the method does not take is an error naming those it does."""
        defaults = self.defaults
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
            raise ValueError(f"method {self.name!r} takes no option {', '.join(map(repr, unknown))}; its options are: "
                             f"{known}.")
        return {**defaults, **options}

    def space_for(self, fixed: dict) -> dict[str, Range]:
        """The declared ranges less the options ``fixed`` sets or makes idle; with ``sampler="pc"`` (and no fixed
        ``snr``) also the Langevin corrector's ``snr`` (:data:`LANGEVIN_SNR`)."""
        idle = self.idle({**self.defaults, **fixed}) if self.idle is not None else set()
        space = {k: r for k, r in self.space.items() if k not in fixed and k not in idle}
        if fixed.get("sampler") == "pc" and "snr" not in fixed:
            space["snr"] = LANGEVIN_SNR
        return space

    def cost_per_step(self, settings: dict) -> int:
        """Network evaluations per unit of the budget option under ``settings`` (the defaults fill the rest)."""
        cost = self.nfe_per_step
        return cost({**self.defaults, **settings}) if callable(cost) else cost

    def budget_options(self, nfe: int, fixed: dict | None = None) -> dict:
        """The budget option that spends at most ``nfe`` network evaluations per image with ``fixed`` (at least one
        step), e.g. ``{"steps": nfe}``; ``{}`` for a method without a budget option."""
        check_positive_int(nfe, "nfe")
        if self.budget is None:
            return {}
        return {self.budget: max(1, nfe // self.cost_per_step(fixed or {}))}

    def nfe(self, settings: dict) -> int:
        """Network evaluations of the prior per image that ``settings`` cost: the budget option times the cost per
        step (a method without a budget option: one step; without a prior: 0). For Heun's sampler, whose last level
        takes one evaluation, it is one more than spent."""
        if not self.needs_prior:
            return 0
        steps = {**self.defaults, **settings}[self.budget] if self.budget is not None else 1
        return steps * self.cost_per_step(settings)


METHODS: dict[str, Method] = {}


def register_method(name: str, *, needs_prior: bool = True, space: dict[str, Range] | None = None,
                    budget: str | None = None, nfe_per_step: int | Callable[[dict], int] = 1,
                    idle: Callable[[dict], set[str]] | None = None):
    """Register ``function(problem, *, options...) -> x`` as a method of :func:`recon.reconstruct`, with its search
    space, its budget option and cost per step, and the options its settings make idle (see :class:`Method`).

    A user method and a user guide, run through ``reconstruct`` and read by the tuner:

    >>> import torch, recon
    >>> from recon.guidance import Compose, Guide, ProximalGuide
    >>> from recon.methods import Range, sample_guided
    >>> class ClampEstimate(Guide):
    ...     '''Keep the clean estimate inside the image range [0, 1].'''
    ...     def after(self, x, denoised, ctx):
    ...         return denoised.clamp(0, 1)
    >>> @recon.register_method("clamped_proximal", space={"lam": Range(0.0, 1.0)}, budget="steps")
    ... def clamped_proximal(problem, *, steps: int = 8, lam: float = 1.0):
    ...     '''Song et al.'s step, with the estimate clamped to [0, 1].'''
    ...     guide = Compose(ProximalGuide(problem.operator, problem.y, lam), ClampEstimate())
    ...     return sample_guided(problem, guide, steps=steps)
    >>> method = recon.METHODS["clamped_proximal"]
    >>> method.space_for({}), method.budget_options(30)
    ({'lam': Range(low=0.0, high=1.0, log=False)}, {'steps': 30})
    >>> op = recon.ParallelBeamCT(16, 6)
    >>> prior = recon.models.GaussianDenoiser(torch.full((1, 16, 16), 0.5), 0.02 * torch.eye(256))
    >>> y = op.A(recon.data.head_ct_phantoms(2, 16, "test", 0))
    >>> x, record = recon.reconstruct(y, op, prior, method="clamped_proximal", steps=4)
    >>> x.shape, record.nfe, method.nfe(record.settings)
    (torch.Size([2, 1, 16, 16]), 4, 4)
    >>> del recon.METHODS["clamped_proximal"]
    """

    def decorator(function):
        if name in METHODS:
            raise ValueError(f"a method named {name!r} is registered already; choose another name.")
        check_signature(function)
        method = Method(name, function, needs_prior, dict(space or {}), budget, nfe_per_step, idle)
        named = [*method.space, *([budget] if budget is not None else [])]
        unknown = [k for k in named if k not in method.defaults]
        if unknown:
            raise ValueError(f"method {name!r}: space and budget must name its options {sorted(method.defaults)}; "
                             f"{unknown} are none of them.")
        METHODS[name] = method
        return function

    return decorator


def check_signature(function: Callable) -> None:
    """A method is ``function(problem, *, option=default, ...)``: one positional argument, keyword options with
    defaults."""
    parameters = list(inspect.signature(function).parameters.values())
    required = [p.name for p in parameters[1:] if p.default is inspect.Parameter.empty]
    if not parameters or required or any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]):
        raise TypeError(f"a method is `function(problem, *, option=default, ...)`; {function.__name__} has "
                        f"{[p.name for p in parameters]} (options without a default: {required}).")


def describe_methods() -> str:
    """One line per registered method: its name, what it is, its options with their defaults, its search space and
    its budget option."""
    lines = []
    for method in METHODS.values():
        options = ", ".join(f"{k}={v!r}" for k, v in method.defaults.items())
        space = ", ".join(f"{k} in [{r.low:g}, {r.high:g}]{' (log)' if r.log else ''}" for k, r in method.space.items())
        budget = f"{method.budget!r}" if method.budget is not None else "none"
        lines.append(f"{method.name}: {method.summary} Options: {options or 'none'}. Searched: {space or 'nothing'}. "
                     f"Budget option: {budget}.")
    return "\n".join(lines)


def sampler_cost(settings: dict) -> int:
    """Network evaluations per level of the settings' ``sampler`` (:data:`recon.sampling.loops.EVALUATIONS_PER_LEVEL`)."""
    if settings["sampler"] not in EVALUATIONS_PER_LEVEL:
        raise ValueError(f"unknown sampler {settings['sampler']!r}; choose one of {sorted(SAMPLERS)}.")
    return EVALUATIONS_PER_LEVEL[settings["sampler"]]


def sample_guided(problem: Problem, guide: Guide | None, *, steps: int, sampler: str = "em", snr: float | None = None):
    """Run a sampler of :data:`recon.sampling.SAMPLERS` from pure noise over ``steps`` Karras levels, with ``guide``."""
    prior = problem.require_prior()
    parameters = inspect.signature(SAMPLERS[sampler]).parameters if sampler in SAMPLERS else {}
    if snr is None and "snr" in parameters:
        problem.report.resolved("snr", parameters["snr"].default)  # the corrector's default, as the value used
    return run_sampler(prior, problem.initial_noise(SIGMA_MAX), problem.generator, guide=guide, steps=steps,
                       sampler=sampler, snr=snr, callback=problem.callback)


def run_sampler(prior: Denoiser, x: torch.Tensor, generator: Generators, *, guide: Guide | None, steps: int,
                sampler: str = "em", snr: float | None = None, callback=None) -> torch.Tensor:
    """``sampler`` from ``x`` at ``SIGMA_MAX`` down the Karras schedule of ``steps`` levels to ``SIGMA_MIN``, then 0
    (the consistency sampler: ``SIGMA_MAX``, then re-noising levels from ``DEFAULT_RENOISE``)."""
    check_positive_int(steps, "steps")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}.")
    options = {} if snr is None else {"snr": snr}
    if snr is not None and "snr" not in inspect.signature(SAMPLERS[sampler]).parameters:
        raise ValueError(f"snr sets a Langevin corrector, which sampler {sampler!r} has not; use sampler='pc' or drop snr.")
    sigmas = (get_sigmas_consistency(steps, SIGMA_MAX, DEFAULT_RENOISE) if sampler == "consistency" else
              get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX))
    return SAMPLERS[sampler](prior, x, sigmas, guide=guide, callback=callback, generator=generator, **options)


# lam is bounded by 1 by definition, and its optimum sits there on several noisy settings (flagged in at_bound).
LAM = Range(0.0, 1.0)


@register_method("proximal", space={"lam": LAM}, budget="steps", nfe_per_step=sampler_cost)
def proximal(problem: Problem, *, steps: int = 60, lam: float | torch.Tensor = 1.0, sampler: str = "em",
             snr: float | None = None, final_projection: bool = True, rcond: float | None = None) -> torch.Tensor:
    """Song et al. (2022): the proximal step toward ``A x = y_t`` before every network evaluation.

    An unconditional prior sampled with ``sampler``, :class:`recon.guidance.ProximalGuide` with weight ``lam``, and
    (``final_projection``) one last ``prox`` with the same ``lam`` onto ``{A x = y}``. The step treats ``y`` as
    exact, so noisy data (``noise_std > 0``) are refused: use ``proximal_ddrm``, or pass ``noise_std=0`` to apply the
    exact step to them anyway. ``rcond`` truncates the step's pseudo-inverse (None: the operator's own)."""
    if problem.noise_std > 0:
        raise ValueError(f"Song et al.'s proximal step treats y as exact, but noise_std={problem.noise_std:g}; use "
                         "method='proximal_ddrm' (noise-aware), or noise_std=0 to apply the exact step regardless.")
    guide = ProximalGuide(problem.operator, problem.y, lam, rcond=rcond)
    x = sample_guided(problem, guide, steps=steps, sampler=sampler, snr=snr)
    if final_projection:
        x = problem.operator.prox(x, problem.y, lam, rcond=rcond)  # Final proximal step onto {A x = y}.
    return x


@register_method("proximal_ddrm", space={"lam": LAM}, budget="steps", nfe_per_step=sampler_cost)
def proximal_ddrm(problem: Problem, *, steps: int = 60, lam: float | torch.Tensor = 1.0, sampler: str = "em",
                  snr: float | None = None) -> torch.Tensor:
    """The proximal step with DDRM's noise-aware rule (Kawar et al. 2022), for noisy data.

    Each singular direction follows the data only while the sampler's noise exceeds the data's
    (:class:`recon.guidance.DDRMProximalGuide`). No final projection (the data are noisy); with ``noise_std = 0`` it
    is Song et al.'s step."""
    guide = DDRMProximalGuide(problem.operator, problem.y, problem.noise_std, lam)
    return sample_guided(problem, guide, steps=steps, sampler=sampler, snr=snr)


@register_method("ddnm", budget="steps")
def ddnm(problem: Problem, *, steps: int = 60, lam: float = 1.0) -> torch.Tensor:
    """The clean estimate projected onto the measurements after every network evaluation (the range–null-space step
    of DDNM, Wang et al. 2023; at ``lam = 1`` the known-component replacement consistency models use for editing),
    over Euler–Maruyama. Noise-free data only."""
    if problem.noise_std > 0:
        raise ValueError(f"the DDNM-style projection treats y as exact, but noise_std={problem.noise_std:g}; use "
                         "method='proximal_ddrm' or 'dps' for noisy data.")
    return sample_guided(problem, EstimateProjectionGuide(problem.operator, problem.y, lam), steps=steps)


def path_cost(settings: dict) -> int:
    """Network evaluations per level of the path method's settings (:func:`recon.guidance.path.evaluations_per_step`)."""
    return evaluations_per_step(settings["variant"], settings["substeps"], settings["points"], settings["lateral"])


@register_method("path", budget="steps", nfe_per_step=path_cost)
def path(problem: Problem, *, steps: int = 30, variant: str = "filter", substeps: int = 1, points: int = 4,
         lateral: int = 0, final_projection: bool = True, history: bool = False) -> torch.Tensor:
    """The post's λ-free path-guided step over Euler–Maruyama: ``variant="filter"`` (score filtering,
    :class:`recon.guidance.path.PathFilterGuide`, ``substeps`` evaluations per step) or ``"grid"`` (a grid and a
    shortest path, :class:`recon.guidance.path.PathGridGuide`, ``(points + 1)(2 lateral + 1)`` per step).

    Every evaluation on the path counts in the NFE, so at a fixed budget the path's resolution trades against the
    sampler's levels: ``substeps`` re-asks the prior along the path (more bends, fewer levels); ``points`` sets how
    finely the grid can place the stop between ``x`` (λ = 0) and the hyperplane (λ = 1); ``lateral`` lanes let the
    path leave the straight segment along the prior's null-space direction (a step costs (points + 1)(2 lateral + 1)).
    ``final_projection`` adds one exact projection onto ``{A x = y}`` at the end, as ``proximal`` does, on
    noise-free data only (noisy data are not projected onto). With ``history`` the record's settings hold
    ``"history"``: per step, the noise level and the share of the way to the data the step took (its implicit λ)."""
    evaluations_per_step(variant, substeps, points, lateral)  # checks the variant
    prior = ReusingDenoiser(problem.require_prior())
    if variant == "filter":
        guide = PathFilterGuide(problem.operator, problem.y, prior, substeps)
    else:
        guide = PathGridGuide(problem.operator, problem.y, prior, points, lateral)
    if history:
        guide.history = problem.report.resolved("history", [])
    x = run_sampler(prior, problem.initial_noise(SIGMA_MAX), problem.generator, guide=guide, steps=steps,
                    callback=problem.callback)
    if final_projection and problem.noise_std == 0:
        x = problem.operator.prox(x, problem.y, 1.0)  # Final projection onto {A x = y}.
    return x


CONSISTENCY_GUIDES = ("proximal", "ddrm", "replacement")


def consistency_guide(problem: Problem, guide: str, lam) -> Guide:
    """The guide of the consistency sampler by name (see :func:`consistency`)."""
    if guide not in CONSISTENCY_GUIDES:
        raise ValueError(f"unknown consistency guide {guide!r}; choose one of {CONSISTENCY_GUIDES}.")
    if guide == "ddrm":
        return DDRMProximalGuide(problem.operator, problem.y, problem.noise_std, lam)
    if guide == "replacement":
        if problem.noise_std > 0:
            raise ValueError(f"replacement treats y as exact, but noise_std={problem.noise_std:g}; use guide='proximal' "
                             "(lam < 1) or guide='ddrm' for noisy data.")
        return ReplacementGuide(problem.operator, problem.y, 1.0)
    return EstimateProjectionGuide(problem.operator, problem.y, lam)


def consistency_idle(settings: dict) -> set[str]:
    """The consistency method's options its settings leave unread: the sampler re-noises at ``steps - 1`` levels (no
    level at one step, so no ``sigma_renoise`` and no ``shrink``; one level at two, so no ``shrink``), and the
    replacement guide has no ``lam``."""
    steps = settings["steps"]
    idle = {"sigma_renoise", "shrink"} if steps == 1 else {"shrink"} if steps == 2 else set()
    return idle | ({"lam"} if settings["guide"] == "replacement" else set())


@register_method("consistency", space={"lam": LAM, "sigma_renoise": Range(0.01, 2.0, log=True),
                                       "shrink": Range(0.01, 1.0, log=True)}, budget="steps", idle=consistency_idle)
def consistency(problem: Problem, *, steps: int = 2, guide: str = "proximal", lam: float | torch.Tensor = 1.0,
                sigma_renoise: float = DEFAULT_RENOISE, shrink: float = 0.1) -> torch.Tensor:
    """The post's proposal: multistep consistency sampling (Song et al. 2023, Alg. 1) with the proximal step applied to
    each clean estimate before re-noising, ``steps`` network evaluations in all.

    ``guide="proximal"``: ``x0 + lam A^+(y - A x0)`` on every estimate (Song et al.'s step at noise level 0; at
    ``lam = 1`` the hard projection of CoSIGN, Zhao et al. 2024, and DDNM); ``"ddrm"``: the noise-aware rule of
    :class:`recon.guidance.DDRMProximalGuide` on the noised state before each evaluation (for noisy data; with
    ``noise_std = 0`` Song et al.'s step toward ``y_t``), followed by a final proximal step on noise-free data;
    ``"replacement"``: the consistency paper's editing step (clip to [0, 1], replace the measured components).
    Levels: pure noise at 10, then ``steps - 1`` re-noising levels from ``sigma_renoise`` down to
    ``shrink * sigma_renoise`` (:func:`recon.sampling.get_sigmas_consistency`). A diffusion prior may stand in for the
    consistency model (its posterior mean then takes the trajectory end's place)."""
    check_positive_int(steps, "steps")
    prior = problem.require_prior(score=False)
    sampler_guide = consistency_guide(problem, guide, lam)
    sigmas = get_sigmas_consistency(steps, SIGMA_MAX, sigma_renoise, shrink)
    x = SAMPLERS["consistency"](prior, problem.initial_noise(SIGMA_MAX), sigmas, guide=sampler_guide,
                                callback=problem.callback, generator=problem.generator)
    if guide == "ddrm" and problem.noise_std == 0:
        x = problem.operator.prox(x, problem.y, lam)  # Final proximal step onto {A x = y}.
    return x


@register_method("tweedie", space={"sigma": Range(0.005, 2.0, log=True), "lam": LAM})
def tweedie(problem: Problem, *, sigma: float = 0.1, lam: float | torch.Tensor = 1.0) -> torch.Tensor:
    """One network evaluation: the posterior-mean (Tweedie) estimate of the pseudo-inverse image re-noised at
    ``sigma``, ``D(A^+ y + sigma z, sigma)``, then a proximal step ``lam`` toward the data (``lam = 1``: the
    projection onto ``{A x = y}``). The cheapest use of a prior for reconstruction, and a baseline for few-step
    methods."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0; got {sigma}.")
    prior = problem.require_prior()
    start = problem.operator.A_pinv(problem.y).to(problem.y.real.dtype if problem.y.is_complex() else problem.y.dtype)
    x = start + problem.initial_noise(sigma).to(start.dtype)
    return problem.operator.prox(prior(x, sigma), problem.y, lam)


@register_method("dps", space={"zeta": Range(1e-2, 1e2, log=True)}, budget="steps")
def dps(problem: Problem, *, steps: int = 60, zeta: float = 1.0) -> torch.Tensor:
    """Diffusion posterior sampling (Chung et al. 2023) over Euler–Maruyama.

    ``zeta`` is dimensionless: it is divided by ``||A||``, since the gradient of ``||y - A D(x)||^2`` scales with it
    (:class:`recon.guidance.DPSGuide`)."""
    return sample_guided(problem, DPSGuide(problem.operator, problem.y, zeta / problem.operator.norm()), steps=steps)


@functools.lru_cache(maxsize=8)
def load_network(name: str):
    """A supervised network by checkpoint name or folder, loaded once per process."""
    from recon.models.checkpoints import load_denoiser

    return load_denoiser(name)


@register_method("supervised", needs_prior=False)
def supervised(problem: Problem, *, network: str | torch.nn.Module | None = None) -> torch.Tensor:
    """A supervised post-processing network (FBPConvNet-style, Jin et al. 2017) applied to the operator's classical
    reconstruction (FBP for CT, zero-filled for MRI); ``network`` is a checkpoint name or folder (e.g.
    ``"head_ct_sup_ct16"``) or a loaded network. It uses no prior and no tuning: what it learned is fixed."""
    from recon.operators.settings import classical

    if network is None:
        raise ValueError("method 'supervised' needs network=: a checkpoint name or folder (e.g. 'head_ct_sup_ct16') or "
                         "a network loaded with recon.load_prior(...).")
    net = load_network(str(network)) if isinstance(network, (str, Path)) else network
    x_classical = classical(problem.operator, problem.y).float()
    problem.report.ran_network()
    with torch.no_grad():
        return net.to(x_classical.device)(x_classical)


@register_method("tv", needs_prior=False, space={"weight": Range(1e-6, 1e-1, log=True)})
def tv(problem: Problem, *, weight: float | None = None, iters: int = 300) -> torch.Tensor:
    """Total-variation least squares by Chambolle–Pock (Rudin et al. 1992; Chambolle & Pock 2011).

    ``weight`` is relative to ``||A||^2`` (None: the operator's ``default_tv_weight``)."""
    op = problem.operator
    relative = op.default_tv_weight if weight is None else weight
    if isinstance(relative, bool) or not isinstance(relative, numbers.Real) or not relative >= 0:
        # checked as given: tv_least_squares would name the weight scaled by ||A||^2
        raise ValueError(f"the TV weight must be a number >= 0 (relative to ||A||^2); got weight={weight!r}.")
    return tv_least_squares(op, problem.y, relative * op.norm() ** 2, iters=iters)


@register_method("pinv", needs_prior=False)
def pinv(problem: Problem) -> torch.Tensor:
    """The minimum-norm least-squares image ``A^+ y`` (truncated where ``A`` is rank-deficient)."""
    return problem.operator.A_pinv(problem.y)


@register_method("fbp", needs_prior=False)
def fbp(problem: Problem) -> torch.Tensor:
    """Filtered back-projection, the CT baseline."""
    if not hasattr(problem.operator, "fbp"):
        raise ValueError(f"'fbp' is a CT baseline; {type(problem.operator).__name__} has none. Use 'pinv' or 'tv'.")
    return problem.operator.fbp(problem.y)


@register_method("zero_filled", needs_prior=False)
def zero_filled(problem: Problem) -> torch.Tensor:
    """The zero-filled inverse FFT, the MRI baseline."""
    if not hasattr(problem.operator, "zero_filled"):
        raise ValueError(f"'zero_filled' is an MRI baseline; {type(problem.operator).__name__} has none.")
    return problem.operator.zero_filled(problem.y)


def sample_prior(prior: Denoiser, n: int, *, steps: int = 60, seed=0, sampler: str = "em", callback=None):
    """``n`` unconditional samples of a prior, with no measurement: what it believes images look like. Sample ``i``
    uses seed ``seed + i``; ``steps`` and ``sampler`` as for the reconstruction methods."""
    size = check_positive_int(prior.image_size, "prior.image_size")
    if is_consistency_model(prior) and sampler != "consistency":
        raise ValueError(f"sampler {sampler!r} reads the prior's score, which a consistency model does not give; use "
                         "sampler='consistency' (steps=1 or 2) with it.")
    gens = generators(seeds_for(seed, n))
    device = next(prior.parameters()).device if isinstance(prior, torch.nn.Module) else None
    x = SIGMA_MAX * randn((n, 1, size, size), gens, device=device)
    return run_sampler(prior, x, gens, guide=None, steps=steps, sampler=sampler, callback=callback)


# Today's solvers register themselves in their own module (it imports this one, so it comes last).
from recon import solvers  # noqa: F401
