"""One training loop for any loss object: shuffled epochs, warm-up, optional gradient clipping, an EMA with a ramped
half-life, a loss curve, and checkpoints that resume exactly where they stopped. It owns the training state's file
(written atomically, so a kill during a save leaves the previous state whole; a file that is not a whole state is
refused by name) and stopping between steps: a time limit, or SIGINT / SIGTERM caught by :class:`StopSignals`."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Self

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset
from tqdm.auto import tqdm

from recon._checks import check_positive_int
from recon.files import atomic_write
from recon.training import distributed
from recon.training.distributed import draw_rand


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings. ``clip_grad``: global gradient-norm clipping (None: off, as DP-SGD clips per example
    instead). ``ema_halflife``/``ema_rampup``: EDM's EMA (App. F of Karras et al. 2022), in steps."""

    steps: int = 2000
    lr: float = 2e-4
    warmup: int = 200
    clip_grad: float | None = 1.0
    ema_halflife: float = 300.0
    ema_rampup: float = 0.25
    checkpoint_every: int = 500
    curve_every: int = 50

    def __post_init__(self):
        for name in ("steps", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        if isinstance(self.curve_every, bool) or not isinstance(self.curve_every, int) or self.curve_every < 0:
            raise ValueError(f"curve_every must be an integer >= 0 (0: no loss curve); got {self.curve_every!r}.")
        if self.warmup < 0 or not self.lr > 0:
            raise ValueError(f"need warmup >= 0 (0: none) and lr > 0; got warmup={self.warmup}, lr={self.lr}.")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"clip_grad must be > 0, or None to turn clipping off; got {self.clip_grad}.")


def ema_beta(step: int, halflife: float, rampup: float) -> float:
    """EMA decay after ``step`` steps: half-life ``min(halflife, rampup * step)`` steps (Karras et al. 2022, App. F)."""
    return 0.5 ** (1.0 / max(min(halflife, rampup * step), 1e-8))


class EpochBatches:
    """Batches of a :class:`torch.utils.data.DataLoader`, epoch after epoch, resumable mid-epoch.

    The default loader shuffles without replacement (``RandomSampler`` on its own generator) and drops the last
    partial batch; another loader can take its place. Resuming restores the sampler generator as it was at the
    epoch's start and skips the batches already seen. Private training draws Poisson batches from
    :class:`recon.training.privacy.PoissonBatches` instead (same ``next`` / ``state_dict`` interface).
    """

    def __init__(self, loader: DataLoader, generator: torch.Generator | None = None):
        if len(loader) == 0:
            raise ValueError("the data loader yields no batch (fewer images than one batch, with drop_last); use more "
                             "training images (--n-train) or a smaller batch (--batch).")
        self.loader, self.generator = loader, generator
        self.epoch_start, self.position, self._iterator = None, 0, None

    @classmethod
    def shuffled(cls, images: torch.Tensor, batch: int, seed: int, labels: torch.Tensor | None = None) -> EpochBatches:
        """Shuffled batches of ``images`` (and of ``labels``, when given: batches are then ``(images, labels)``)."""
        generator = torch.Generator().manual_seed(seed)
        dataset = TensorDataset(images) if labels is None else TensorDataset(images, labels)
        loader = DataLoader(dataset, batch_size=batch, sampler=RandomSampler(dataset, generator=generator),
                            drop_last=True)
        return cls(loader, generator)

    def __next__(self) -> torch.Tensor:
        if self._iterator is None:
            if self.generator is not None:
                self.epoch_start = self.generator.get_state()
            self._iterator, self.position = iter(self.loader), 0
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = None
            return next(self)
        self.position += 1
        return batch[0] if len(batch) == 1 else tuple(batch)

    def state_dict(self) -> dict:
        return {"epoch_start": self.epoch_start, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        if self.generator is None:  # e.g. Poisson sampling, whose batches are independent draws anyway
            warnings.warn("this loader's sampler has no generator to restore: the resumed run draws new batches "
                          "instead of the ones the interrupted run would have seen.", stacklevel=2)
            return
        if state["epoch_start"] is not None:
            self.generator.set_state(state["epoch_start"])
            self._iterator = None
            next(self)  # starts the epoch again from the same permutation
            for _ in range(state["position"] - 1):
                next(self)


def random_flip(x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Left-right flips of half the batch on average (the anatomy is roughly symmetric)."""
    flip = draw_rand((x0.shape[0],), generator, x0.device) < 0.5
    return torch.where(flip.reshape(-1, 1, 1, 1), x0.flip(-1), x0)


@dataclasses.dataclass
class TrainState:
    """Everything a run needs to continue: the model, its EMA copy, the optimiser, the generator and the record."""

    model: nn.Module
    ema: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    curve: list = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    window: list = dataclasses.field(default_factory=list)
    replica: nn.Module | None = None  # under torchrun: the DDP replica of ``model`` that the loss calls
    data: dict | None = None  # what the run trains on, saved so that a resumed run can check it trains on the same

    @classmethod
    def create(cls, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> TrainState:
        ema = copy.deepcopy(model.net).requires_grad_(False)
        return cls(model, ema, optimizer, generator)

    def save(self, path: Path, batches: EpochBatches) -> None:
        """Write the state to ``path`` atomically: until the new file is whole, the previous one stays."""
        atomic_write(path, lambda temporary: torch.save(self.state_dict(batches), temporary))

    def state_dict(self, batches: EpochBatches) -> dict:
        return {"net": self.model.net.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "step": self.step, "curve": self.curve, "elapsed": self.elapsed, "window": self.window,
                "batches": batches.state_dict(), "data": self.data}

    def load_state_dict(self, state: dict, batches: EpochBatches, path: Path | str = "the saved state") -> None:
        """Continue from ``state`` (as :func:`read_state` returns it); one that does not fit this run's network,
        optimiser or batches is a ValueError naming ``path``."""
        try:
            self.model.net.load_state_dict(state["net"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as error:
            detail = " ".join(line.strip() for line in str(error).splitlines()[:2])  # torch's first line is a header
            raise ValueError(f"{path} holds a network or optimiser that does not fit this run's ({detail})") from None
        self.generator.set_state(state["generator"])
        self.step, self.curve, self.elapsed = int(state["step"]), [list(c) for c in state["curve"]], state["elapsed"]
        self.window, self.data = list(state["window"]), state.get("data")
        batches.load_state_dict(state["batches"])


def read_state(path: Path) -> dict:
    """A training state file as :meth:`TrainState.save` wrote it. A file cut short (a kill during a save by an older
    version, a full disk) or not a state at all is a ValueError naming it, not the unpickler's EOFError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError) as error:  # empty, cut, foreign
        raise ValueError(f"{path} is not a whole training state ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'no detail'}): it was cut short or is "
                         "another file") from None
    if not isinstance(state, dict) or not {"net", "step", "batches"} <= state.keys():
        raise ValueError(f"{path} is not a training state (no network, step and batches in it)")
    return state


class StopSignals:
    """SIGINT and SIGTERM while training, caught so that the run can stop between steps with a saved state.

    The handler only records the signal (``received``); :func:`train` checks :meth:`stop` after each step and ends
    with a checkpoint, and the program then exits. A second signal acts as it would without this class (the previous
    handlers are back after the first): it stops at once, and every file is still whole, as each is written
    atomically. Outside the main thread (where Python cannot install handlers) it catches nothing.

    >>> with StopSignals() as signals:
    ...     signals.stop()
    False
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self.previous: dict = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def handle(self, signum: int, frame) -> None:
        self.received = signum
        self.restore()

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}

    def stop(self) -> bool:
        return self.received is not None


def train_step(state: TrainState, loss_fn: Callable, x0: torch.Tensor, config: TrainConfig,
               labels: torch.Tensor | None = None) -> float:
    """One optimiser step on one batch: warm-up, loss, backward, optional clipping, step, EMA update. An empty batch
    (Poisson sampling can draw one) still steps: a private optimiser then adds its noise to a zero gradient."""
    for group in state.optimizer.param_groups:
        group["lr"] = config.lr * min(1.0, (state.step + 1) / max(config.warmup, 1))  # linear warm-up
    if hasattr(loss_fn, "at_step"):  # a loss with a schedule over training (ECT's shrinking gap)
        loss_fn.at_step(state.step)
    state.optimizer.zero_grad(set_to_none=True)
    if x0.shape[0]:
        model = state.model if state.replica is None else state.replica
        loss = loss_fn(model, x0, state.generator, **({} if labels is None else {"labels": labels}))
        loss.backward()
    else:
        loss = torch.tensor(float("nan"))
        empty_batch_gradients(state.model.net)
    if config.clip_grad is not None:
        torch.nn.utils.clip_grad_norm_(state.model.net.parameters(), config.clip_grad)
    state.optimizer.step()
    with torch.no_grad():  # EMA with a ramped half-life, so early weights do not linger
        beta = ema_beta(state.step + 1, config.ema_halflife, config.ema_rampup)
        for pe, pn in zip(state.ema.parameters(), state.model.net.parameters()):
            pe.lerp_(pn.detach(), 1 - beta)
    state.step += 1
    return float(loss.detach())


def empty_batch_gradients(net: nn.Module) -> None:
    """Per-example gradients of an empty batch (zero rows), so that a DP optimiser takes its noise-only step."""
    for p in net.parameters():
        if p.requires_grad:
            p.grad_sample = p.new_zeros((0, *p.shape))
            p.grad = torch.zeros_like(p)


def record_loss(state: TrainState, loss: float, config: TrainConfig) -> None:
    if config.curve_every == 0 or math.isnan(loss):  # no curve (a private run), or an empty batch
        return
    state.window.append(loss)
    if state.step % config.curve_every == 0 or state.step == config.steps:
        state.curve.append([state.step, sum(state.window) / len(state.window)])
        state.window = []


def train(state: TrainState, loss_fn: Callable, batches: EpochBatches, config: TrainConfig, *,
          checkpoint: Callable[[TrainState], None] | None = None, device="cpu", description: str = "train",
          time_limit: float | None = None, stop: Callable[[], bool] | None = None) -> None:
    """Run ``train_step`` until ``config.steps``, calling ``checkpoint(state)`` every ``checkpoint_every`` steps and
    at the end. Batches go to ``device`` in channels-last layout, flipped at random. Training stops early, after a
    checkpoint, at the end of the first step past ``time_limit`` (seconds of this call) or after which ``stop()`` says
    so (e.g. :meth:`StopSignals.stop`). Under ``torchrun`` each process trains on its block of every batch
    (:mod:`recon.training.distributed`), the loss recorded is the global batch's, rank 0 decides when to stop, and
    only rank 0 shows progress."""
    start = time.perf_counter() - state.elapsed
    stopping = early_stop(time_limit, stop)
    bar = tqdm(total=config.steps, initial=state.step, desc=description, mininterval=5.0,
               disable=distributed.current().rank != 0)
    while state.step < config.steps:
        batch = distributed.local_rows(next(batches))
        x0, labels = batch if isinstance(batch, tuple) else (batch, None)
        x0 = random_flip(x0.to(device, memory_format=torch.channels_last), state.generator)
        labels = None if labels is None else labels.to(device)
        record_loss(state, distributed.mean_over_processes(train_step(state, loss_fn, x0, config, labels)), config)
        bar.update(1)
        if state.curve and state.curve[-1][0] == state.step:
            bar.set_postfix(loss=f"{state.curve[-1][1]:.4f}")
        last = state.step == config.steps or stopping()
        if checkpoint is not None and (state.step % config.checkpoint_every == 0 or last):
            state.elapsed = time.perf_counter() - start
            checkpoint(state)
        if last:
            break
    state.elapsed = time.perf_counter() - start
    bar.close()


def early_stop(time_limit: float | None, stop: Callable[[], bool] | None) -> Callable[[], bool]:
    """Whether to stop after this step: ``time_limit`` seconds from now have passed or ``stop()`` says so, as rank 0
    sees it (every process stops at the same step)."""
    stop_at = None if time_limit is None else time.perf_counter() + time_limit
    if stop_at is None and stop is None:
        return lambda: False
    return lambda: distributed.rank0_says((stop_at is not None and time.perf_counter() >= stop_at)
                                          or (stop is not None and stop()))
