"""Online merging optimizers (Lu et al. 2024, "Online Merging Optimizers for Boosting Rewards and
Mitigating Tax in Alignment", arXiv 2405.17931): AdamW whose every update is merged with the SFT
task vector τ = θ_sft − θ_base.

Per parameter and step t (HF-style AdamW moments, then the merge)::

    m ← β1 m + (1−β1) g ;  v ← β2 v + (1−β2) g²
    d ← −lr_t·sqrt(1−β2^t)/(1−β1^t) · m / (sqrt(v) + eps)
    OnDARE: d ← Bernoulli(p)·d / p   (fresh mask each step)
            if rescale: d ← clamp(d · L1(d_before)/L1(d), −clip, clip)
            θ ← θ + α·τ + (1−α)·d
    OnTIES: d ← d·TopK(|d|, p)  (+ L1 rescale);  s ← sign(τ + d) (0 → +1)
            θ ← θ + α·τ·[sign τ = s] + (1−α)·d·[sign d = s]
    θ ← θ − lr_t·wd·θ                      (decoupled weight decay)

τ is sparsified once, when it is set: OnDARE keeps a fixed Bernoulli(p) mask rescaled by 1/p
and clamped to ±clip (what the reference code does with ``F.dropout``); OnTIES keeps the top-p
magnitudes (optionally L1-rescaled). This follows ``QwenLM/online_merging_optimizers``
``online_merging/optimizers.py`` (``ODAdamW``/``OTAdamW``), including its 1/p rescale of the
sparsified update (the paper's text says no rescale; the code's behaviour is the default here).

Step-K (``online_step = K > 1``, the paper's Alg. 2): on steps with t mod K ≠ 0 the plain Adam
update is applied and cached; on step K it is rolled back, added to the current update and the
sum is merged. **The reference implementation's bug**: in that non-merge branch it executes
``return loss`` inside the loop over parameters, so on non-merge steps only the first parameter is
updated. Here the branch ``continue``\\ s to the next parameter (a test checks that every
parameter moves on every step).

τ is kept on the parameter's device in the parameter's dtype (one more copy of the trained
weights); :func:`task_vector` streams both checkpoints one tensor at a time with
``safetensors.safe_open``. Full fine-tuning only: under LoRA the trained tensors are adapters
and τ has no counterpart. The masks come from one seeded ``torch.Generator`` per device whose
state is part of :meth:`state_dict`, so a resumed run draws the same masks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch


def _topk_mask(x: torch.Tensor, frac: float) -> torch.Tensor:
    """1 at the ``max(1, int(numel·frac))`` largest |x| entries, 0 elsewhere (``torch.topk``,
    not the reference's full ``argsort``)."""
    flat = x.abs().flatten()
    k = max(1, int(flat.numel() * frac))
    mask = torch.zeros_like(flat)
    mask[torch.topk(flat, k, sorted=False).indices] = 1
    return mask.view_as(x)


class OnlineMergingAdamW(torch.optim.Optimizer):
    """AdamW with online merging (see the module comment). Build it from named parameters, then
    call :meth:`set_task_vector` before the first step."""

    def __init__(
        self,
        named_params: Iterable[tuple[str, torch.nn.Parameter]],
        lr: float = 1e-6,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        method: str = "ondare",
        reserve_p: float = 0.01,
        alpha: float = 1e-7,
        rescale: bool = False,
        clip_val: float = 1.0,
        online_step: int = 1,
        seed: int = 0,
    ) -> None:
        if method not in ("ondare", "onties"):
            raise ValueError(f"method must be 'ondare' or 'onties', got {method!r}")
        if not 0 < reserve_p <= 1:
            raise ValueError(f"reserve_p must be in (0, 1], got {reserve_p}")
        if online_step < 1:
            raise ValueError(f"online_step must be at least 1, got {online_step}")
        named = [(n, p) for n, p in named_params if p.requires_grad]
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__([{"params": [p for _, p in named]}], defaults)
        self.names = [n for n, _ in named]
        self.method = method
        self.reserve_p = reserve_p
        self.alpha = alpha
        self.rescale = rescale
        self.clip_val = clip_val
        self.online_step = online_step
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def _gen(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed)
            self._generators[key] = g
        return self._generators[key]

    def _bernoulli(self, like: torch.Tensor) -> torch.Tensor:
        r = torch.rand(like.shape, generator=self._gen(like.device), device=like.device)
        return (r < self.reserve_p).to(like.dtype)

    def set_task_vector(self, tau: Mapping[str, torch.Tensor]) -> None:
        """Stores τ (= θ_sft − θ_base, by parameter name) sparsified as the method does."""
        params = self.param_groups[0]["params"]
        missing = [n for n in self.names if n not in tau]
        if missing:
            raise KeyError(f"the task vector lacks parameter(s): {', '.join(missing[:5])}")
        for name, p in zip(self.names, params, strict=True):
            t = tau[name].detach().to(device=p.device, dtype=torch.float32)
            if t.shape != p.shape:
                raise ValueError(f"task vector {name}: shape {tuple(t.shape)} != {tuple(p.shape)}")
            if self.method == "ondare":
                t = (t * self._bernoulli(t) / self.reserve_p).clamp_(-self.clip_val, self.clip_val)
            else:
                full_l1 = t.abs().sum()
                t = t * _topk_mask(t, self.reserve_p)
                if self.rescale:
                    t = t * (full_l1 / t.abs().sum().clamp_min(1e-12))
            self.state[p]["tau"] = t.to(p.dtype)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2) = group["lr"], group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if "tau" not in st:
                    raise RuntimeError("set_task_vector() must be called before step()")
                if "step" not in st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    st["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                st["step"] += 1
                t = st["step"]
                g = p.grad.float()
                m, v = st["exp_avg"], st["exp_avg_sq"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                d = -step_size * m / (v.sqrt() + group["eps"])
                k = self.online_step
                if k > 1:
                    cache = st.setdefault("cache", torch.zeros_like(d))
                    if t % k != 0:
                        # plain Adam step, remembered for the merge (reference bug: `return`)
                        p.add_(d.to(p.dtype))
                        cache.add_(d)
                        p.add_(p, alpha=-lr * group["weight_decay"])
                        continue
                    p.sub_(cache.to(p.dtype))
                    d = d + cache
                    cache.zero_()
                tau = st["tau"].float()
                if self.method == "ondare":
                    before = d.abs().sum()
                    d = d * self._bernoulli(d) / self.reserve_p
                    if self.rescale:
                        d = (d * (before / d.abs().sum().clamp_min(1e-30))).clamp(
                            -self.clip_val, self.clip_val
                        )
                    update = self.alpha * tau + (1 - self.alpha) * d
                else:
                    before = d.abs().sum()
                    d = d * _topk_mask(d, self.reserve_p)
                    if self.rescale:
                        d = d * (before / d.abs().sum().clamp_min(1e-30))
                    s = torch.where(tau + d >= 0, 1.0, -1.0)
                    update = self.alpha * tau * (torch.sign(tau) == s) + (1 - self.alpha) * d * (
                        torch.sign(d) == s
                    )
                p.add_(update.to(p.dtype))
                p.add_(p, alpha=-lr * group["weight_decay"])
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["merge_rng"] = {k: g.get_state() for k, g in self._generators.items()}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        rng = sd.pop("merge_rng", {})
        super().load_state_dict(sd)
        for key, s in rng.items():
            self._gen(torch.device(key)).set_state(s)


def _safetensors_index(folder: Path) -> dict[str, Path]:
    """Tensor name → file of a ``save_pretrained`` folder (single file or sharded)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
        return {k: folder / v for k, v in weight_map.items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        raise FileNotFoundError(f"{folder}: no model.safetensors(.index.json)")
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as f:
        return {k: single for k in f.keys()}  # noqa: SIM118  (safe_open is not a Mapping)


def task_vector(
    names: Iterable[str], sft_dir: str | Path, base_dir: str | Path
) -> dict[str, torch.Tensor]:
    """τ = θ_sft − θ_base for each parameter name, read one tensor at a time from the two
    safetensors checkpoints (fp32 on CPU)."""
    from safetensors import safe_open

    sft, base = _safetensors_index(Path(sft_dir)), _safetensors_index(Path(base_dir))
    out: dict[str, torch.Tensor] = {}
    for name in names:
        for where, idx in (("SFT", sft), ("base", base)):
            if name not in idx:
                raise KeyError(f"{where} checkpoint has no tensor {name!r}")
        with (
            safe_open(str(sft[name]), framework="pt") as fs,
            safe_open(str(base[name]), framework="pt") as fb,
        ):
            out[name] = fs.get_tensor(name).float() - fb.get_tensor(name).float()
    return out
