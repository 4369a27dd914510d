"""One tuning protocol for every method with a free parameter: optuna's TPE (Bergstra et al. 2011; Akiba et al.
2019) maximises mean validation PSNR over the method's declared search space, with the same trial budget for every
method, a distinct seed per study, and a flag when the optimum sits on a bound of its range. A method's search space
is part of its registration (:meth:`recon.methods.Method.space_for`; :class:`Range` lives there and is re-exported
here). Studies may live in a
SQLite file, so that they can be resumed and inspected.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from pathlib import Path

import torch

try:
    import optuna
    import sqlalchemy
except ImportError as error:  # an extra: the library reconstructs without it
    raise ImportError(f"tuning needs optuna and SQLAlchemy ({error.name} is missing); install them with "
                      "`pip install 'recon[tune]'`.") from error

from recon.methods import METHODS, Range
from recon.metrics import psnr
from recon.operators.base import LinearOperator
from recon.operators.noise import simulate
from recon.reconstruction import reconstruct

__all__ = ["GRID_POINTS", "Range", "Search", "Tuned", "run_study", "search_plan", "storage_for", "study_seed",
           "tune_method"]

# The protocol's search (``search="protocol"``): a method with one free parameter is tuned on a grid of 13 points, one
# with two on a 7 x 7 grid (a grid finds a peaked optimum that 10 random-start TPE trials can miss, and its trials are
# the sensitivity curve); one with more by TPE with at least 30 trials, a third of them random start-up.
GRID_POINTS = {1: 13, 2: 7}
MIN_TPE_TRIALS = 30


@dataclasses.dataclass(frozen=True)
class Search:
    """How a study searches a space: ``kind`` "grid" (every point of ``grid``), "tpe" (``n_trials`` trials, the
    first ``n_startup_trials`` random) or "none" (nothing to tune: one evaluation)."""

    kind: str
    n_trials: int
    n_startup_trials: int = 0
    grid: dict | None = None

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.kind == "grid":
            return optuna.samplers.GridSampler(self.grid, seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials)


def search_plan(space: dict[str, Range], search: str = "tpe", n_trials: int = 20,
                n_startup_trials: int = 8) -> Search:
    """The search of ``space``: "tpe" (``n_trials`` trials, ``n_startup_trials`` random), "grid" (the protocol's grid
    for one or two parameters), or "protocol" (the grid for one or two parameters, else TPE with at least
    ``MIN_TPE_TRIALS`` trials and a third random). An empty space is evaluated once.

    >>> search_plan({"zeta": Range(1e-2, 1e2, log=True)}, "protocol").n_trials
    13
    >>> plan = search_plan({"a": Range(0, 1), "b": Range(0, 1), "c": Range(0, 1)}, "protocol", n_trials=10)
    >>> plan.kind, plan.n_trials, plan.n_startup_trials
    ('tpe', 30, 10)
    """
    if search not in ("tpe", "grid", "protocol"):
        raise ValueError(f"search must be 'tpe', 'grid' or 'protocol'; got {search!r}.")
    if not space:
        return Search("none", 1)
    if search in ("grid", "protocol") and len(space) in GRID_POINTS:
        points = GRID_POINTS[len(space)]
        return Search("grid", points ** len(space), grid={k: r.grid(points) for k, r in space.items()})
    if search == "grid":
        raise ValueError(f"a grid search takes 1 or 2 free parameters; this space has {sorted(space)}: use "
                         "search='protocol' (TPE beyond two) or fix some of them.")
    if search == "protocol":
        n_trials = max(n_trials, MIN_TPE_TRIALS)
        n_startup_trials = n_trials // 3
    return Search("tpe", n_trials, n_startup_trials)


def storage_for(storage: str | Path | None):
    """optuna's relational storage for a SQLite file path or a database URL (None: in memory). SQLite waits up to a
    minute for a lock, so that several worker processes can share one file; a heartbeat marks the trials of a worker
    that died as failed, so that a resumed study does not count them. A URL of no SQLAlchemy dialect, a dialect whose
    driver is not installed, a SQLite file in a missing folder and a file that is not a SQLite database are refused
    (ValueError) before any retry."""
    if storage is None:
        return None
    url = str(storage) if "://" in str(storage) else f"sqlite:///{Path(storage)}"
    check_storage(url)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(5):  # workers starting together race to create the tables; the loser retries
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120)
        except sqlalchemy.exc.SQLAlchemyError:  # "table exists", "UNIQUE constraint failed" from the other worker
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))


def check_storage(url: str) -> None:
    """Refuse a storage URL that cannot work, with the URL, the reason and the fix (see :func:`storage_for`)."""
    try:
        dialect = sqlalchemy.engine.make_url(url).get_dialect()
        dialect.import_dbapi()
    except ImportError as error:
        raise ValueError(f"storage {url!r} needs the database driver {error.name!r}, which is not installed; "
                         f"install the package that provides {error.name!r}, name a driver you have in the URL "
                         "(e.g. postgresql+psycopg2://...), or pass a SQLite file.") from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise ValueError(f"storage {url!r} is not a database URL optuna's relational storage takes "
                         f"({str(error).splitlines()[0]}); pass a SQLite file or a SQLAlchemy URL such as "
                         "postgresql://user@host/db or mysql://user@host/db.") from None
    database = sqlalchemy.engine.make_url(url).database
    if dialect.name != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    if not path.parent.is_dir():
        raise ValueError(f"storage {url!r}: the folder {path.parent} does not exist; create it or pass a SQLite file "
                         "in an existing folder.")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise ValueError(f"storage {url!r}: {path} is not a SQLite database; pass a new file name or a study "
                                 "file that `python -m recon.tune --storage` made.")
    elif path.exists() and not path.is_file():
        raise ValueError(f"storage {url!r}: {path} is not a file; pass a SQLite file name.")


def run_study(objective, name: str, n_trials: int, storage, sampler) -> optuna.Study:
    """Create or join the study ``name`` and optimise until it holds ``n_trials`` finished (or, with other workers,
    running) trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name=name, load_if_exists=True,
                                storage=storage_for(storage), sampler=sampler)
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    if n_trials > done:
        study.optimize(objective, n_trials=n_trials - done,
                       callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=counted)])
    return study


def study_seed(name: str) -> int:
    """A seed for a study's sampler derived from its name, so that no two studies share a trial sequence."""
    return zlib.crc32(name.encode())


@dataclasses.dataclass
class Tuned:
    """A finished study: the fixed options, the best values of the free ones, the best mean validation PSNR, every
    trial, and the parameters whose optimum sits on a bound of its range."""

    method: str
    fixed: dict
    best: dict
    value: float
    trials: list
    at_bound: list
    seed: int
    search: str = "tpe"

    @property
    def options(self) -> dict:
        return {**self.fixed, **self.best}


def tune_method(method: str, operator: LinearOperator, images: torch.Tensor, prior=None, *, noise=None,
                fine: torch.Tensor | None = None, fixed: dict | None = None, space: dict | None = None,
                n_trials: int = 20, n_startup_trials: int = 8, search: str = "tpe", name: str | None = None,
                seed: int = 0, sampler_seed: int | None = None, storage: str | Path | None = None, device="cpu",
                worker: int = 0) -> Tuned:
    """Tune ``method``'s free parameters on ``images`` (validation images only: the test split must never choose a
    value). Measurements are simulated once (``noise`` model, off-grid from ``fine`` if given); each trial
    reconstructs them with ``fixed`` options plus the suggested ones from the method's registered space
    (:meth:`recon.methods.Method.space_for`, unless ``space`` replaces it) and scores mean PSNR. The search is
    :func:`search_plan`'s ``search`` (TPE with ``n_trials`` by default; "protocol": a grid for one or two parameters).
    The sampler's seed is ``sampler_seed`` or derived from ``name``; with ``storage`` (a SQLite file, or any database
    URL optuna's relational storage takes) trials already there count toward the study's trials. Reconstructions run on ``device`` (the
    measurements are simulated on the CPU).

    Several workers (processes, or machines sharing a database) may run the same study at once: each passes its own
    ``worker`` number, which offsets its sampler's seed (two workers must not propose the same points), and together
    they stop at ``n_trials`` finished or running trials. A parallel study's trial sequence depends on timing, so
    only its single-worker form reproduces exactly."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    fixed = dict(fixed or {})
    space = METHODS[method].space_for(fixed) if space is None else space
    name = name or f"{method}|{fixed}"
    measurement = simulate(operator, images, noise, seed, fine).to(device)

    def objective(trial: optuna.Trial) -> float:
        suggested = {k: trial.suggest_float(k, r.low, r.high, log=r.log) for k, r in space.items()}
        x, record = reconstruct(measurement, prior=prior, method=method, seed=seed, **fixed, **suggested)
        trial.set_user_attr("residual", float(record.residual.mean()))
        trial.set_user_attr("worker", worker)
        return float(psnr(x, images).mean())

    chosen = (study_seed(name) if sampler_seed is None else sampler_seed) + worker
    plan = search_plan(space, search, n_trials, n_startup_trials)
    study = run_study(objective, name, plan.n_trials, storage, plan.sampler(chosen))
    trials = [{**t.params, "value": t.value, **t.user_attrs} for t in study.trials]
    at_bound = [k for k, r in space.items() if r.at_bound(study.best_params[k])]
    return Tuned(method, fixed, study.best_params, study.best_value, trials, at_bound, chosen, plan.kind)
