"""Training on several processes or machines with PyTorch's DistributedDataParallel (DDP), launched by ``torchrun``.

    torchrun --nproc_per_node 2 -m recon.train --data head_ct --batch 64 --out checkpoints/head_ct_ddp
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 -m recon.train ...

``--batch`` stays the *global* batch: every process draws the same shuffled batch and trains on its own contiguous
block of ``batch / world`` rows; DDP averages the gradients, so a step is the step one process would take on the
whole batch. The per-example randomness (noise levels, noise, flips, label dropout) is drawn for the whole batch
on every process from the same generator and each keeps its block (:func:`draw_randn`), so a run on ``W`` processes
follows the single-process run at the same global batch up to floating-point summation order (the test checks it
with the gloo backend on CPU). The gloo backend serves CPUs, NCCL serves CUDA (one GPU per process, ``LOCAL_RANK``).
Only rank 0 prints, checkpoints and writes the card. Without ``torchrun`` (no ``WORLD_SIZE``) nothing changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclasses.dataclass(frozen=True)
class Shard:
    """This process's place: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1

    def block(self, n_global: int) -> slice:
        """The rows of a global batch of ``n_global`` that this process trains on."""
        if n_global % self.world:
            raise ValueError(f"a global batch of {n_global} does not split over {self.world} processes; pass a --batch "
                             f"divisible by {self.world}.")
        n = n_global // self.world
        return slice(self.rank * n, (self.rank + 1) * n)


_current = Shard()
_comm_device = torch.device("cpu")  # where collective tensors live: CUDA under NCCL


def current() -> Shard:
    return _current


@contextlib.contextmanager
def sharded(shard: Shard):
    """Run the enclosed training as ``shard`` (set by :func:`launch`; tests use it to check the arithmetic)."""
    global _current
    before, _current = _current, shard
    try:
        yield shard
    finally:
        _current = before


def draw_randn(shape: tuple, generator: torch.Generator, device) -> torch.Tensor:
    """Standard normal draws for this process's rows of a batch: the whole global batch's draws from ``generator``
    (the same on every process), of which this process keeps its block. ``shape[0]`` is the local batch."""
    shard = _current
    full = torch.randn((shape[0] * shard.world, *shape[1:]), generator=generator, device=device)
    return full[shape[0] * shard.rank:shape[0] * (shard.rank + 1)]


def draw_rand(shape: tuple, generator: torch.Generator, device) -> torch.Tensor:
    """Uniform draws, as :func:`draw_randn`."""
    shard = _current
    full = torch.rand((shape[0] * shard.world, *shape[1:]), generator=generator, device=device)
    return full[shape[0] * shard.rank:shape[0] * (shard.rank + 1)]


def launched() -> bool:
    """Whether ``torchrun`` started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch(device: torch.device) -> tuple[Shard, torch.device]:
    """Join the process group ``torchrun`` set up (gloo on CPU, NCCL on CUDA with one GPU per process) and return
    this process's shard and device."""
    if not launched():
        return Shard(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    global _current, _comm_device
    _comm_device = device
    _current = Shard(dist.get_rank(), dist.get_world_size())
    return _current, device


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    global _current
    _current = Shard()


class Replica(DistributedDataParallel):
    """DDP around a denoiser, letting the losses read the denoiser's attributes (``sigma_data``, ``net``) through it."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


def replicate(model: nn.Module, device: torch.device) -> nn.Module | None:
    """The DDP replica the losses call in place of ``model`` (gradients averaged over processes), or None alone."""
    if _current.world == 1:
        return None
    return Replica(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean_over_processes(value: float) -> float:
    """The mean of ``value`` over the processes (a batch loss becomes the global batch's loss)."""
    if _current.world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=_comm_device)
    dist.all_reduce(total)
    return float(total) / _current.world


def rank0_says(flag: bool) -> bool:
    """Rank 0's ``flag`` on every process (e.g. "the time limit has passed"), so that all stop at the same step."""
    if _current.world == 1:
        return flag
    decision = torch.tensor([int(flag)], device=_comm_device)
    dist.broadcast(decision, src=0)
    return bool(decision)


def local_rows(batch):
    """This process's block of a global batch (a tensor or a tuple of tensors)."""
    if _current.world == 1:
        return batch
    if isinstance(batch, tuple):
        rows = _current.block(batch[0].shape[0])
        return tuple(t[rows] for t in batch)
    return batch[_current.block(batch.shape[0])]
