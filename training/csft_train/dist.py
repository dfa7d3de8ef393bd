"""Data parallelism with torch's own stack: the process group torchrun sets up, DDP or FSDP2
(``fully_shard``) around the model, each rank's share of a micro-batch, sums across ranks, and
full (unsharded) state dicts for checkpoints and ``final/``.

How a run with N ranks matches one process: the plan is built with the global batch (N ×
``per_device_batch_size``) in the same length-grouped / packed order, and rank r takes rows
``r·B … (r+1)·B`` of every micro-batch. Each rank's loss is its summed token NLL over the
*global* trained-token count of the step, times N (DDP and FSDP average gradients over ranks),
so the summed gradient is exactly that of one process over the whole step, up to float
summation order. A rank left without rows (the short last batch of an epoch) runs the first
row with weight 0, so that every rank joins every collective.

Checkpoints keep one format for every strategy: the full state dicts gathered on rank 0 (CPU)
and saved with ``torch.save`` like a single-process run, loaded with ``weights_only=True``
(``torch.distributed.checkpoint`` would shard the files, but its metadata is a pickle, which a
checkpoint here must never need). Each rank saves its own RNG state (``rng-rank{r}.pt``), so a
resume on the same world size is exact. The cost: rank 0 holds one full copy of the weights
and the optimizer state in CPU memory while saving.

One process (no torchrun, or ``WORLD_SIZE=1``) is the plain path: nothing here changes it.
Not here: tensor/pipeline parallelism, and DCP's sharded checkpoints.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from csft_train.config import Config, ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; ``Dist()`` is the single process."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    #: ``none``, ``ddp`` or ``fsdp`` (``auto`` resolved).
    strategy: str = "none"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, micro_batch: Sequence[Any], per_device: int) -> tuple[list[Any], float]:
        """This rank's rows of a global micro-batch and the weight of its loss (0 for the
        stand-in row of a rank left without rows)."""
        if not self.active:
            return list(micro_batch), 1.0
        mine = list(micro_batch[self.rank * per_device : (self.rank + 1) * per_device])
        if mine:
            return mine, 1.0
        return list(micro_batch[:1]), 0.0

    def sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Element-wise sums over the ranks (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return [float(x) for x in t.tolist()]

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def raise_together(self, error: BaseException | None, device: torch.device) -> None:
        """Raises on every rank when any rank hit ``error`` (a rank that raised alone would
        leave the others waiting in the next collective): ``error`` itself where it happened,
        a RuntimeError naming the failed rank(s) elsewhere."""
        if not self.active:
            if error is not None:
                raise error
            return
        flags = torch.zeros(self.world, dtype=torch.int32, device=device)
        flags[self.rank] = int(error is not None)
        torch.distributed.all_reduce(flags)
        if error is not None:
            raise error
        failed = [r for r, f in enumerate(flags.tolist()) if f]
        if failed:
            raise RuntimeError(f"rank(s) {failed} failed (see their messages)")


def relaunch(argv: Sequence[str], nproc: int) -> int | None:
    """``--nproc N`` (N > 1) outside torchrun: runs ``csft-data ARGV`` (without ``--nproc``)
    under ``torch.distributed.run --standalone --nproc_per_node N`` (one node) and returns its
    exit status; ``None`` when this process should do the work itself."""
    import subprocess
    import sys

    if nproc <= 1 or "WORLD_SIZE" in os.environ:
        return None
    rest: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(nproc), "-m", "csft_data", *rest]
    return subprocess.run(cmd, check=False).returncode


def join(device: torch.device, strategy: str = "data") -> Dist:
    """Joins the process group of a torchrun job (NCCL on CUDA, gloo on the CPU); ``Dist()``
    for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, device_id=_device_id(device, local_rank))
    return Dist(world=world, rank=rank, local_rank=local_rank, strategy=strategy)


def gather_json(d: Dist, value: Any, device: torch.device) -> list[Any]:
    """Every rank's ``value`` (JSON-serialisable), in rank order, on every rank: sent as UTF-8
    bytes in tensors (no pickling, unlike ``all_gather_object``)."""
    import json

    if not d.active:
        return [value]
    data = json.dumps(value, ensure_ascii=False).encode("utf-8")
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(d.world)]
    torch.distributed.all_gather(sizes, size)
    longest = max(int(x) for x in sizes)
    buf = torch.zeros(longest, dtype=torch.uint8, device=device)
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    bufs = [torch.zeros_like(buf) for _ in range(d.world)]
    torch.distributed.all_gather(bufs, buf)
    return [
        json.loads(bytes(b[: int(n)].cpu().tolist()).decode("utf-8"))
        for b, n in zip(bufs, sizes, strict=True)
    ]


def init(cfg: Config, device: torch.device) -> Dist:
    """The process group for ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on the CPU) and the
    strategy ``[dist] strategy`` resolves to; ``Dist()`` for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    strategy = cfg.dist.strategy
    if strategy == "none":
        raise ConfigError(
            f"{cfg.source}: launched with WORLD_SIZE={world} but [dist] strategy = 'none'"
        )
    if strategy == "auto":
        strategy = "ddp" if cfg.lora.enabled else "fsdp"
    if strategy == "fsdp" and cfg.merge.method != "none":
        raise ConfigError(
            f"{cfg.source}: [merge] online merging keeps a full-weight task vector per "
            "parameter and is not sharded: use [dist] strategy = 'ddp'"
        )
    return join(device, strategy)


def _device_id(device: torch.device, local_rank: int) -> torch.device | None:
    return torch.device("cuda", local_rank) if device.type == "cuda" else None


def local_device(device: torch.device) -> torch.device:
    """``cuda:LOCAL_RANK`` under torchrun (each rank its own GPU), else ``device``."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(local)
        return local
    return device


def wrap(model: Any, cfg: Config, dist: Dist, compute: torch.dtype | None) -> Any:
    """DDP or FSDP2 around ``model`` (unchanged for one process). FSDP2 shards each decoder
    layer (the model's ``_no_split_modules``) and then the root; with mixed precision its
    parameters are gathered in ``compute`` (bf16) and gradients reduced in fp32."""
    if dist.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if dist.strategy != "fsdp":
        return model
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kw: dict[str, Any] = {}
    if compute is not None:
        kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32)
    if cfg.dist.cpu_offload:
        kw["offload_policy"] = CPUOffloadPolicy()
    names = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ConfigError(
            f"{cfg.source}: [dist] strategy = 'fsdp': the model names no decoder-layer class "
            "(_no_split_modules) to shard by"
        )
    for layer in layers:
        fully_shard(layer, **kw)
    fully_shard(model, **kw)
    return model


def unwrap(model: Any) -> Any:
    """The module under a DDP wrapper (FSDP2 keeps the module itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def gradient_sync(model: Any, dist: Dist, sync: bool) -> Iterator[None]:
    """Skips the gradient all-reduce on the micro-batches before a step's last one."""
    if dist.strategy == "ddp" and not sync:
        with model.no_sync():
            yield
        return
    if dist.strategy == "fsdp":
        model.set_requires_gradient_sync(sync)
    yield


def full_norm(norm: torch.Tensor) -> float:
    """A gradient norm as a float (FSDP2 returns a replicated DTensor)."""
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def _options(**kw: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)


def model_state(model: Any, dist: Dist) -> dict[str, Any]:
    """The full state dict (a collective under FSDP: every rank calls it; rank 0 gets it)."""
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(model, options=_options())
    return unwrap(model).state_dict()  # type: ignore[no-any-return]


def optimizer_state(model: Any, optimizer: Any, dist: Dist) -> dict[str, Any]:
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer, options=_options())
    return optimizer.state_dict()  # type: ignore[no-any-return]


def load_states(model: Any, optimizer: Any, states: dict[str, Any] | None, dist: Dist) -> None:
    """Loads a checkpoint's model and optimizer state: under FSDP rank 0 read the files and
    broadcasts (``states`` is None on the other ranks); otherwise every rank loads its copy."""
    if dist.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        opts = _options(broadcast_from_rank0=True)
        s = states or {"model": {}, "optimizer": {}}
        set_model_state_dict(model, s["model"], options=opts)
        set_optimizer_state_dict(model, optimizer, s["optimizer"], options=opts)
        return
    assert states is not None
    unwrap(model).load_state_dict(states["model"])
    optimizer.load_state_dict(states["optimizer"])


def export_copy(model: Any, state: dict[str, Any]) -> Any:
    """A plain (unsharded) copy of an FSDP model on the CPU holding ``state``, for
    ``save_pretrained`` on rank 0."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        copy = AutoModelForCausalLM.from_config(model.config)  # type: ignore[no-untyped-call]
    copy.to_empty(device="cpu")
    copy.load_state_dict(state)
    copy.tie_weights()
    return copy


def describe(d: Dist) -> str:
    """`` × N ranks (fsdp)`` for the run's first log line; empty for one process."""
    return f" × {d.world} ranks ({d.strategy})" if d.active else ""


def close(d: Dist) -> None:
    """Leaves the process group at the end of a command (all ranks together)."""
    if d.active and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
