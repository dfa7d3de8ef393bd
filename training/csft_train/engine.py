"""The training loop shared by SFT, DPO and continued pre-training: device and precision, model
loading, optimizer and cosine schedule, gradient accumulation, checkpoints with exact resume,
progress and metrics.

* Loss normalisation: each micro-batch's loss is a *sum* (token NLL for SFT and pre-training,
  pair losses for DPO) divided by the normaliser of the whole optimizer step (trained tokens, or
  pairs, over all its accumulated micro-batches), so the step's gradient is that of the per-token
  (per-pair) mean over the accumulated batch, whatever the padding and micro-batch sizes.
* Precision (:class:`Precision`): ``[model] dtype = "auto"`` is fp32 on CPU and mixed bf16 on
  CUDA, as LLaMA-Factory trains with ``bf16: true``: trainable parameters (and so gradients and
  AdamW state) in fp32, frozen weights (a LoRA base, a DPO reference) in bf16, the forward under
  bf16 autocast. ``pure_bf16`` keeps everything in bf16 (LLaMA-Factory ``pure_bf16``: half the
  memory of the weights and optimizer, but updates below bf16's resolution are lost). Attention
  is flash-attention 2 when installed on CUDA, else sdpa.
* The plan of optimizer steps is a pure function of (data lengths, config, seed): step ``s`` of
  every run of the same config sees the same micro-batches, so resuming needs only the global step.
* A checkpoint (``checkpoint-<step>/``) holds the model state, optimizer, scheduler, RNG states
  (python, numpy, torch CPU and CUDA) and ``state.json``; it is written to a temporary folder and
  renamed. Resuming restores all of them and truncates ``metrics.jsonl`` to the checkpoint's step,
  so a resumed run continues exactly as the uninterrupted one.
* Every ``.pt`` file of a checkpoint holds only tensors and plain values (numbers, strings,
  lists, tuples, dicts): the RNG states are stored as tensors and ints, the scheduler without
  its functions. Resuming loads them with ``torch.load(weights_only=True)``, so a planted
  checkpoint folder cannot run code: a file that needs anything else is refused
  (:class:`CheckpointError`).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csft_train import dist as dist_mod
from csft_train.config import TRAINED_WITH_FILE, Config
from csft_train.dist import Dist

#: (loss sum of a micro-batch, metric sums) for a model and a micro-batch.
LossFn = Callable[[torch.nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]


def pick_device(cfg: Config) -> torch.device:
    want = cfg.train.device
    if want == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{cfg.source}: [train] device = 'cuda' but CUDA is not available")
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(want)


@dataclass(frozen=True)
class Precision:
    """How a run holds and computes its weights."""

    #: Frozen weights (a LoRA base model, a DPO reference) are loaded in this dtype.
    frozen: torch.dtype
    #: Trainable parameters, their gradients and the optimizer state are in this dtype.
    master: torch.dtype
    #: The forward runs under autocast to this dtype; ``None``: no autocast.
    compute: torch.dtype | None

    def autocast(self, device: torch.device) -> Any:
        if self.compute is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=self.compute)

    def describe(self) -> str:
        def name(d: torch.dtype) -> str:
            return str(d).removeprefix("torch.")

        if self.compute is None:
            return name(self.master)
        return f"{name(self.master)} master, {name(self.compute)} autocast"


_FP32 = Precision(torch.float32, torch.float32, None)
_MIXED_BF16 = Precision(torch.bfloat16, torch.float32, torch.bfloat16)
_PURE_BF16 = Precision(torch.bfloat16, torch.bfloat16, None)


def pick_precision(cfg: Config, device: torch.device) -> Precision:
    """``[model] dtype``: ``auto`` (mixed bf16 on a CUDA device with bf16, else fp32), ``bf16``
    (mixed: fp32 master weights, bf16 autocast), ``pure_bf16`` or ``fp32``."""
    d = cfg.model.dtype
    if d == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return _MIXED_BF16
        return _FP32
    return {"bf16": _MIXED_BF16, "pure_bf16": _PURE_BF16, "fp32": _FP32}[d]


def cast_trainable(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Trainable parameters to ``dtype`` (the master copy); frozen ones stay as loaded."""
    for p in model.parameters():
        if p.requires_grad and p.dtype != dtype:
            p.data = p.data.to(dtype)


def attn_implementation(cfg: Config, device: torch.device) -> str:
    a = cfg.model.attn_implementation
    if a != "auto":
        return a
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "sdpa"
        return "flash_attention_2"
    return "sdpa"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def load_model(cfg: Config, path: str, device: torch.device, dtype: torch.dtype) -> Any:
    """A causal LM from a local folder (never the hub): weights, or config only with
    ``[model] init = "random"``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{cfg.source}: no model folder (config.json) at {folder}")
    attn = attn_implementation(cfg, device)
    if cfg.model.init == "random":
        mc = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            mc, dtype=dtype, attn_implementation=attn
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=dtype, attn_implementation=attn, local_files_only=True
        )
    model.to(device)
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model


def start_run(cfg: Config) -> tuple[Path, torch.device, Precision, Dist]:
    """The first steps of every training command: seed, join the process group under torchrun
    (each rank on its own GPU), make ``output_dir`` with the config as run (``config.toml``)
    in it, pick the device and the precision."""
    from csft_train.config import config_to_dict, dump_toml

    seed_everything(cfg.train.seed)
    device = dist_mod.local_device(pick_device(cfg))
    d = dist_mod.init(cfg, device)
    out_dir = Path(cfg.train.output_dir)
    if d.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.toml").write_text(dump_toml(config_to_dict(cfg)), encoding="utf-8")
    d.barrier()
    return out_dir, device, pick_precision(cfg, device), d


def distribute(cfg: Config, model: Any, d: Dist, prec: Precision) -> Any:
    """The model as it trains: under DDP/FSDP2 for several ranks (``csft_train.dist.wrap``),
    then compiled in place with ``[model] compile`` (checkpoint names unchanged). Build the
    optimizer from what this returns."""
    model = dist_mod.wrap(model, cfg, d, prec.compute)
    if cfg.model.compile:
        dist_mod.unwrap(model).compile()
    return model


def load_policy(cfg: Config, device: torch.device, prec: Precision) -> Any:
    """The model to train: for full fine-tuning every weight is loaded straight into the master
    dtype; with LoRA the base stays frozen in the (smaller) frozen dtype and only the adapters
    are trained, in the master dtype."""
    model = load_model(
        cfg, cfg.model.path, device, prec.frozen if cfg.lora.enabled else prec.master
    )
    if cfg.lora.enabled:
        from csft_train.lora import apply_lora

        model = apply_lora(cfg, model)
    cast_trainable(model, prec.master)
    return model


def make_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    from transformers import get_scheduler

    warmup = cfg.train.warmup_steps or math.ceil(cfg.train.warmup_ratio * total_steps)
    return get_scheduler(
        cfg.train.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=warmup,
        num_training_steps=total_steps,
    )


def make_optimizer(cfg: Config, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW, or the online merging AdamW of ``[merge]`` (τ read from the two checkpoints)."""
    t = cfg.train
    if cfg.merge.method == "none":
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            params,
            lr=lr,
            betas=(t.adam_beta1, t.adam_beta2),
            eps=t.adam_eps,
            weight_decay=t.weight_decay,
            # One kernel for all parameters on CUDA; the same maths as the default loop.
            fused=bool(params) and all(p.is_cuda for p in params),
        )
    from csft_train.merging import OnlineMergingAdamW, task_vector

    m = cfg.merge
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = OnlineMergingAdamW(
        named,
        lr=lr,
        betas=(t.adam_beta1, t.adam_beta2),
        eps=t.adam_eps,
        weight_decay=t.weight_decay,
        method=m.method,
        reserve_p=m.reserve_p,
        alpha=m.alpha,
        rescale=m.rescale,
        clip_val=m.clip_val,
        online_step=m.online_step,
        seed=t.seed,
    )
    opt.set_task_vector(task_vector(opt.names, m.sft_model or cfg.model.path, m.base_model))
    return opt


@dataclass
class Plan:
    """Optimizer steps: ``steps[s]`` is the list of micro-batches of step ``s``, with the
    normaliser (trained tokens or pairs) and input tokens of the whole step."""

    steps: list[list[Any]]
    norms: list[float]
    tokens: list[int]
    steps_per_epoch: int


def build_plan(
    cfg: Config,
    epoch_batches: Callable[[int], list[Any]],
    norm: Callable[[Any], float],
    tokens: Callable[[Any], int],
) -> Plan:
    """Cuts each epoch's micro-batches into groups of ``gradient_accumulation_steps`` and
    takes ``ceil(epochs · steps_per_epoch)`` steps (or ``max_steps``)."""
    ga = cfg.train.gradient_accumulation_steps
    first = epoch_batches(0)
    per_epoch = math.ceil(len(first) / ga)
    total = cfg.train.max_steps or math.ceil(cfg.train.epochs * per_epoch)
    steps: list[list[Any]] = []
    epoch, batches = 0, first
    for s in range(total):
        e, k = divmod(s, per_epoch)
        if e != epoch:
            epoch, batches = e, epoch_batches(e)
        steps.append(batches[k * ga : (k + 1) * ga])
    return Plan(
        steps=steps,
        norms=[sum(norm(mb) for mb in st) for st in steps],
        tokens=[sum(tokens(mb) for mb in st) for st in steps],
        steps_per_epoch=per_epoch,
    )


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from: it needs more than tensors and plain values
    to load (and so could run code), or it is unreadable or malformed."""


def _rng_state() -> dict[str, Any]:
    """The RNG states as tensors, ints and floats only (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": [int(x) for x in internal], "gauss": gauss},
        "numpy": {
            "bit_generator": str(name),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], path: Path) -> None:
    try:
        py, npy = state["python"], state["numpy"]
        random.setstate((int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss"]))
        np.random.set_state(
            (
                str(npy["bit_generator"]),
                npy["key"].numpy().astype(np.uint32),
                int(npy["pos"]),
                int(npy["has_gauss"]),
                float(npy["cached_gaussian"]),
            )
        )
        torch.set_rng_state(state["torch"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not an RNG state of this trainer ({e})") from None
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _rng_file(d: Dist) -> str:
    """``rng.pt`` for one process, ``rng-rank{r}.pt`` per rank of a distributed run."""
    return f"rng-rank{d.rank}.pt" if d.active else "rng.pt"


def _scheduler_state(scheduler: Any) -> dict[str, Any]:
    """The scheduler's ``state_dict`` without what only rebuilding it restores: a ``LambdaLR``
    (every ``[train] lr_scheduler``) lists its functions' attributes, which are rebuilt from the
    config on resume (and could be any object), so they are stored as ``None``."""
    state: dict[str, Any] = dict(scheduler.state_dict())
    if "lr_lambdas" in state:
        state["lr_lambdas"] = [None] * len(state["lr_lambdas"])
    return state


_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")


def load_checkpoint_file(path: Path, map_location: Any = None) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values only, never code. A
    file that needs anything else raises :class:`CheckpointError` naming it and what it
    needs."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises weights_only=False: keep only what the file asked for.
        found = _GLOBAL.search(str(e))
        what = f" (it asks for {found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused: it holds more than tensors and plain values{what}, so loading it "
            "could run code; the trainer's own checkpoints never do: delete the checkpoint "
            "folder, or train without resuming (--no-resume, [train] resume = false)"
        ) from None
    except (RuntimeError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint file ({e})") from None


def latest_checkpoint(out_dir: Path) -> Path | None:
    found = [
        (int(p.name.split("-")[1]), p)
        for p in out_dir.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-")[1].isdigit() and (p / "state.json").is_file()
    ]
    return max(found)[1] if found else None


@dataclass
class Loop:
    """Everything the loop needs; :meth:`run` trains and returns the final metrics."""

    cfg: Config
    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    plan: Plan
    loss_fn: LossFn
    out_dir: Path
    device: torch.device
    precision: Precision = _FP32
    #: Extra tensors saved with each checkpoint (e.g. precomputed reference log-probs).
    extra_state: dict[str, Any] = field(default_factory=dict)
    #: This process's rank and strategy (``csft_train.dist``); one process by default.
    dist: Dist = field(default_factory=Dist)
    log: Callable[[str], None] = field(default=lambda s: print(s, file=sys.stderr, flush=True))

    def __post_init__(self) -> None:
        if not self.dist.main:  # metrics and messages come from rank 0
            self.log = lambda s: None

    def save(self, step: int) -> Path:
        """``checkpoint-{step}``, written to a hidden folder and renamed: the full state dicts
        (gathered on rank 0 under FSDP) and each rank's RNG state."""
        d = self.dist
        model_sd = dist_mod.model_state(self.model, d)  # collectives: every rank takes part
        optim_sd = dist_mod.optimizer_state(self.model, self.optimizer, d)
        final = self.out_dir / f"checkpoint-{step}"
        tmp = self.out_dir / f".checkpoint-{step}.tmp"
        if d.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        d.barrier()
        torch.save(_rng_state(), tmp / _rng_file(d))
        if d.main:
            torch.save(model_sd, tmp / "model.pt")
            torch.save(optim_sd, tmp / "optimizer.pt")
            torch.save(_scheduler_state(self.scheduler), tmp / "scheduler.pt")
            state = {"global_step": step, "world_size": d.world, "strategy": d.strategy}
            (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        d.barrier()
        if d.main:
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            keep = self.cfg.train.save_total_limit
            if keep:
                old = sorted(
                    (int(p.name.split("-")[1]), p)
                    for p in self.out_dir.glob("checkpoint-*")
                    if p.name.split("-")[1].isdigit()
                )
                for _, p in old[:-keep]:
                    shutil.rmtree(p, ignore_errors=True)
        d.barrier()
        return final

    def restore(self, ckpt: Path) -> int:
        """Loads ``ckpt``. Every file is loaded (and so checked) before any state is changed;
        under FSDP rank 0 reads the weights and broadcasts them. A checkpoint of another world
        size is refused (its RNG states and shards would not line up)."""
        d = self.dist
        error: BaseException | None = None
        states: dict[str, Any] | None = None
        try:
            info = json.loads((ckpt / "state.json").read_text("utf-8"))
            saved = int(info.get("world_size", 1))
            if saved != d.world:
                raise CheckpointError(
                    f"{ckpt}: saved by {saved} process(es), resumed with {d.world}: resume "
                    "with the same number of processes, or start a new output_dir"
                )
            names = ["scheduler", "rng"]
            if d.main or d.strategy != "fsdp":  # under FSDP rank 0 reads and broadcasts
                names = ["model", "optimizer", *names]
            big = "cpu" if d.strategy == "fsdp" else self.device
            states = {}
            for name in names:
                path = ckpt / (_rng_file(d) if name == "rng" else f"{name}.pt")
                where = big if name in ("model", "optimizer") else None
                states[name] = load_checkpoint_file(path, where)
                if not isinstance(states[name], dict):
                    got = type(states[name]).__name__
                    raise CheckpointError(f"{path}: expected a dict, got {got}")
        except (OSError, ValueError, RuntimeError) as e:
            error = e
        d.raise_together(error, self.device)
        assert states is not None
        full = states if "model" in states else None
        dist_mod.load_states(self.model, self.optimizer, full, d)
        self.scheduler.load_state_dict(states["scheduler"])
        _set_rng_state(states["rng"], ckpt / _rng_file(d))
        step = int(info["global_step"])
        metrics = self.out_dir / "metrics.jsonl"
        if d.main and metrics.is_file():
            kept = [
                line
                for line in metrics.read_text("utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step
            ]
            metrics.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
        d.barrier()
        return step

    def run(self) -> dict[str, Any]:
        cfg, plan = self.cfg, self.plan
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start = 0
        if cfg.train.resume:
            ckpt = latest_checkpoint(self.out_dir)
            if ckpt is not None:
                start = self.restore(ckpt)
                self.log(f"resumed from {ckpt} at step {start}")
        total = len(plan.steps)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        window: dict[str, float] = {}
        window_tokens, t0 = 0, time.perf_counter()
        last: dict[str, Any] = {}
        d, per_device = self.dist, cfg.train.per_device_batch_size
        flops_per_token = model_flops_per_token(self.model)
        peak = peak_tflops(self.device)
        run_t0 = time.perf_counter()
        metrics_path = self.out_dir / "metrics.jsonl" if d.main else Path(os.devnull)
        with metrics_path.open("a", encoding="utf-8") as metrics:
            for step in range(start, total):
                norm = max(plan.norms[step], 1.0)
                step_loss = 0.0
                sums: dict[str, float] = {}
                micro = plan.steps[step]
                for n_mb, mb in enumerate(micro):
                    rows, weight = d.shard(mb, per_device)
                    with dist_mod.gradient_sync(self.model, d, n_mb == len(micro) - 1):
                        with self.precision.autocast(self.device):
                            loss_sum, m = self.loss_fn(self.model, rows)
                        # × world: DDP/FSDP average the ranks' gradients, the step wants the sum
                        loss = loss_sum * (weight * d.world / norm)
                        loss.backward()  # type: ignore[no-untyped-call]
                    step_loss += weight * float(loss_sum.detach()) / norm
                    for k, v in m.items():
                        sums[k] = sums.get(k, 0.0) + weight * v
                if d.active:
                    keys = sorted(sums)
                    reduced = d.sum([step_loss, *(sums[k] for k in keys)], self.device)
                    step_loss, sums = reduced[0], dict(zip(keys, reduced[1:], strict=True))
                grad_norm = dist_mod.full_norm(
                    torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm or math.inf)
                )
                lr = float(self.optimizer.param_groups[0]["lr"])
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                window["loss"] = window.get("loss", 0.0) + step_loss
                window["grad_norm"] = window.get("grad_norm", 0.0) + grad_norm
                for k, v in sums.items():
                    window[k] = window.get(k, 0.0) + v / norm
                window["n"] = window.get("n", 0.0) + 1
                window_tokens += plan.tokens[step]
                done = step + 1
                if done % cfg.train.logging_steps == 0 or done == total:
                    if self.device.type == "cuda":
                        torch.cuda.synchronize()
                    dt = time.perf_counter() - t0
                    n = window.pop("n")
                    rec = {
                        "step": done,
                        "epoch": round(done / plan.steps_per_epoch, 4),
                        "lr": lr,
                        **{k: v / n for k, v in window.items()},
                        "tokens_per_s": window_tokens / dt if dt > 0 else 0.0,
                    }
                    tflops = flops_per_token * rec["tokens_per_s"] / d.world / 1e12
                    rec["tflops_per_device"] = tflops
                    if peak:
                        rec["mfu"] = tflops / peak
                    metrics.write(json.dumps(rec) + "\n")
                    metrics.flush()
                    extras = " | ".join(
                        f"{k} {v:.4f}" for k, v in rec.items() if k not in _LOGGED_APART
                    )
                    eta = (time.perf_counter() - run_t0) / (done - start) * (total - done)
                    self.log(
                        f"step {done}/{total} | epoch {rec['epoch']:.2f} | loss {rec['loss']:.4f}"
                        f" | lr {lr:.3e} | tok/s {rec['tokens_per_s']:.0f}"
                        + (f" | mfu {rec['mfu']:.1%}" if "mfu" in rec else "")
                        + (f" | {extras}" if extras else "")
                        + f" | eta {_duration(eta)}"
                    )
                    last = rec
                    window, window_tokens, t0 = {}, 0, time.perf_counter()
                save_steps = cfg.train.save_steps
                if (save_steps and done % save_steps == 0) or done == total:
                    self.save(done)
        return {"steps": total, "final": last}


_LOGGED_APART = {
    "step",
    "epoch",
    "lr",
    "loss",
    "tokens_per_s",
    "grad_norm",
    "tflops_per_device",
    "mfu",
}

#: Dense bf16 peak TFLOP/s by GPU name (no sparsity), for the MFU in the metrics.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0}


def peak_tflops(device: torch.device | str) -> float | None:
    """The bf16 peak of a known GPU (``PEAK_TFLOPS``), else None (no MFU is reported)."""
    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def model_flops_per_token(model: Any) -> float:
    """Training FLOPs per token of the dense layers: 6·N for full fine-tuning; with frozen
    weights (LoRA) 4·N_frozen + 6·N_trained (no weight gradients for frozen ones). Attention's
    12·L·d·S is left out: it depends on each row's length (benches/bench_train.py counts it)."""
    n_all = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return float(4 * (n_all - n_train) + 6 * n_train)


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


#: Tokenizer files of the model folder copied into ``final/`` (``tokenizer.json`` comes from
#: ``[model] tokenizer``, the one the data was encoded with).
_TOKENIZER_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)


def save_final(
    cfg: Config, model: Any, out_dir: Path, dtype: torch.dtype, d: Dist | None = None
) -> Path:
    """``save_pretrained`` into ``out_dir/final`` (LoRA adapters merged) in ``dtype`` (the
    precision's frozen dtype: bf16 from a mixed-precision run, not the fp32 master copy), with
    the tokenizer beside it and ``csft_train.json`` (the chat template trained with), so that
    ``AutoTokenizer`` and ``csft-data eval`` load and prompt the folder as it is. The model is
    changed in place: call it last. Under several ranks rank 0 writes one unsharded model
    (FSDP: the full state dict gathered from every rank)."""
    d = d or Dist()
    final = out_dir / "final"
    if d.active:
        state = dist_mod.model_state(model, d) if d.strategy == "fsdp" else None
        if d.main:
            plain = dist_mod.unwrap(model) if state is None else dist_mod.export_copy(model, state)
            save_final(cfg, plain, out_dir, dtype)
        d.barrier()
        return final
    to_save = model
    if hasattr(model, "merge_and_unload"):
        to_save = model.merge_and_unload()
    to_save.to(dtype)
    to_save.save_pretrained(str(final))
    tok = Path(cfg.model.tokenizer)
    if tok.is_file():
        shutil.copy2(tok, final / "tokenizer.json")
    src = Path(cfg.model.path)
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, final / name)
    for extra in src.glob("*.tiktoken"):
        shutil.copy2(extra, final / extra.name)
    if not (final / "tokenizer_config.json").is_file() and tok.is_file():
        write_json(final / "tokenizer_config.json", _minimal_tokenizer_config(cfg, tok))
    write_json(
        final / TRAINED_WITH_FILE,
        {
            "template": cfg.model.template,
            "system": cfg.model.system,
            "bos_token": cfg.model.bos_token,
            "eos_token": cfg.model.eos_token,
            "cutoff_len": cfg.data.cutoff_len,
        },
    )
    return final


def _minimal_tokenizer_config(cfg: Config, tokenizer_json: Path) -> dict[str, Any]:
    """For a model folder without a ``tokenizer_config.json``: ``tokenizer.json``'s own
    vocabulary with the run's BOS/EOS names (``[model]`` or the template's) where it has them,
    the EOS as padding, and every other special token named ``None``, so that a model-specific
    tokenizer class (picked by transformers from ``config.json``) adds no token of its own
    default that the model has no embedding for."""
    from tokenizers import Tokenizer

    import csft_data

    vocab = Tokenizer.from_file(str(tokenizer_json))
    names = csft_data.template_tokens(cfg.model.template)

    def known(name: str | None) -> str | None:
        return name if name and vocab.token_to_id(name) is not None else None

    eos = known(cfg.model.eos_token or names["eos_token"])
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": known(cfg.model.bos_token or names["bos_token"]),
        "eos_token": eos,
        "pad_token": eos,
        "unk_token": None,
    }


def write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-row sums of the log-probs of the label tokens (after the causal shift)."""
    logits = logits[:, :-1].float()
    labels = labels[:, 1:]
    mask = labels != -100
    safe = labels.masked_fill(~mask, 0)
    logps = torch.log_softmax(logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return (logps * mask).sum(-1)


def token_nll_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed NLL of the label tokens after the causal shift (fp32)."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().flatten(0, 1),
        labels[:, 1:].flatten(),
        ignore_index=-100,
        reduction="sum",
    )


def describe(model: Any, names: Sequence[str] = ()) -> str:
    n = sum(p.numel() for p in model.parameters())
    t = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{n / 1e6:.1f}M parameters, {t / 1e6:.1f}M trained" + "".join(names)
