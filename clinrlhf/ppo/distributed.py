"""Data-parallel PPO across processes started by `torchrun`: the process group, and the few collectives
the trainer needs so that every rank takes the same decisions.

Each rank samples its own share of every batch (seeded by `seed + rank`); the policy and value model
are wrapped in DistributedDataParallel, so gradients are averaged and the weights stay identical; the
KL that drives the controller, the KL cap and early stopping, and the logged metrics are all averaged
over ranks, so no rank ever decides differently from another. Only rank 0 touches the disk or MLflow.

Without `torchrun` (no WORLD_SIZE in the environment) every method is a no-op: `Dist()` is one
process, and the trainer runs exactly as it always did.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clinrlhf.ppo.config import PPOConfig

T = TypeVar("T")
M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Dist:
    """This process's place in the group. The default is a single process, where nothing communicates."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, the policy and MLflow runs."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """Where this rank's models run: its own GPU when there are any, else the CPU. Hide the GPUs
        (CUDA_VISIBLE_DEVICES="") to train on the CPU of a GPU machine."""
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def all_reduce_mean(self, value: float) -> float:
        return self.mean({"value": value})["value"]

    def all_reduce_sum(self, value: float) -> float:
        return self.all_reduce_mean(value) * self.world_size

    def mean(self, metrics: dict[str, float]) -> dict[str, float]:
        """Every value averaged over ranks, in one all-reduce. Ranks hold equal shares of the batch,
        so the mean of their means is the mean over the whole batch."""
        if self.world_size == 1:
            return dict(metrics)
        names = sorted(metrics)  # the same order on every rank, whatever order the dict was built in
        values = torch.tensor([float(metrics[n]) for n in names], dtype=torch.float64)
        torch_dist.all_reduce(values)  # a CPU tensor goes through gloo even when NCCL owns the GPUs
        return {n: v / self.world_size for n, v in zip(names, values.tolist(), strict=True)}

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's `obj` on every rank (what the others pass is ignored)."""
        if self.world_size == 1:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_object(self, obj: T) -> list[T]:
        """Every rank's `obj`, indexed by rank, on every rank."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def require_same(self, what: str, digest: str) -> None:
        """Raise on every rank at once unless all ranks hold the same `digest` of `what`: an input the
        ranks must share (the prompts) that differs would have DDP average two objectives silently."""
        digests = self.gather_object(digest)
        others = [rank for rank, theirs in enumerate(digests) if theirs != digests[0]]
        if others:
            ranks = ", ".join(map(str, others))
            raise ValueError(
                f"rank(s) {ranks} were given other {what} than rank 0; every rank needs the same"
            )

    def wrap(self, module: M) -> M:
        """`module` in DistributedDataParallel, which averages gradients during backward (and broadcasts
        rank 0's weights now, so every rank starts from the same ones). Forward passes whose gradients
        must be averaged have to go through the wrapper; sampling can use `module` itself.

        Typed as the module it wraps because the trainer only calls it, and DDP forwards calls as-is."""
        if self.world_size == 1:
            return module
        on_gpu = next(module.parameters()).device.type == "cuda"
        # Buffers (attention masks) are constants here: syncing them every forward is pure cost.
        ddp = DistributedDataParallel(
            module, device_ids=[self.local_rank] if on_gpu else None, forward_sync_buffers=False
        )
        return cast(M, ddp)

    def shard(self, config: PPOConfig) -> PPOConfig:
        """This rank's share of each batch: `batch_size` and `final_kl_samples` are global sizes, and
        the sum over ranks of the local ones. Seeds stay global here; the trainer adds the rank."""
        if self.world_size == 1:
            return config
        if config.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} must be a multiple of the {self.world_size} processes"
            )
        return dataclasses.replace(
            config,
            batch_size=config.batch_size // self.world_size,
            final_kl_samples=-(-config.final_kl_samples // self.world_size),
        )


def backend() -> str:
    """NCCL for CUDA tensors when there are GPUs, gloo for CPU tensors always (metrics and objects
    are small CPU tensors even on a GPU cluster)."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def current() -> Dist:
    """The running process group, or a single process if none was initialized."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def session() -> Iterator[Dist]:
    """Join the process group that `torchrun` describes in RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR
    and MASTER_PORT, and leave it on exit. Outside torchrun (or with one process) it is `Dist()`."""
    if not launched_by_torchrun() or torch_dist.is_initialized():
        yield current()
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # before NCCL starts, or every rank talks through GPU 0
    torch_dist.init_process_group(backend=backend())
    try:
        yield current()
    finally:
        torch_dist.destroy_process_group()
