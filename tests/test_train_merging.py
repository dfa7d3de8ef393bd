"""Online merging optimizers: one OnDARE / OnTIES step equals the paper's formula computed
directly on tensors (same seeded masks), Step-K updates every parameter on non-merge steps (the
reference implementation's early `return` updated only the first), the task vector is read from
two safetensors checkpoints, and the optimizer state (masks' RNG included) round-trips."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from csft_train.merging import OnlineMergingAdamW, task_vector  # noqa: E402

# EPS is large enough that first-step Adam deltas differ by far more than float rounding: with
# 1e-6 they are all ≈ LR, and OnTIES's top-k of them was decided by rounding (torch 2.15 picked
# a different element than the direct computation).
LR, B1, B2, EPS, WD, P, ALPHA = 1e-2, 0.9, 0.999, 1e-3, 0.01, 0.3, 0.2


def setup(
    method: str, k: int = 1
) -> tuple[list[tuple[str, torch.nn.Parameter]], OnlineMergingAdamW, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    named = [
        ("a.weight", torch.nn.Parameter(torch.randn(6, 5, generator=g))),
        ("b.bias", torch.nn.Parameter(torch.randn(7, generator=g))),
    ]
    tau = {n: 0.5 * torch.randn(p.shape, generator=g) for n, p in named}
    for _, p in named:
        p.grad = torch.randn(p.shape, generator=g)
    opt = OnlineMergingAdamW(
        named,
        lr=LR,
        betas=(B1, B2),
        eps=EPS,
        weight_decay=WD,
        method=method,
        reserve_p=P,
        alpha=ALPHA,
        online_step=k,
        seed=11,
    )
    opt.set_task_vector(tau)
    return named, opt, tau


def adam_delta(g: torch.Tensor, t: int = 1) -> torch.Tensor:
    m = (1 - B1) * g
    v = (1 - B2) * g * g
    return -(LR * math.sqrt(1 - B2**t) / (1 - B1**t)) * m / (v.sqrt() + EPS)


def test_ondare_step_equals_direct_computation() -> None:
    named, opt, tau = setup("ondare")
    before = {n: p.detach().clone() for n, p in named}
    grads = {n: p.grad.clone() for n, p in named}
    opt.step()
    gen = torch.Generator().manual_seed(11)
    masks_tau = {n: (torch.rand(p.shape, generator=gen) < P).float() for n, p in named}
    for n, p in named:
        t = (tau[n] * masks_tau[n] / P).clamp(-1, 1)
        d = adam_delta(grads[n])
        d = d * (torch.rand(p.shape, generator=gen) < P).float() / P
        want = before[n] + ALPHA * t + (1 - ALPHA) * d
        want = want - LR * WD * want
        assert torch.allclose(p.detach(), want, atol=1e-7), n


def test_onties_step_equals_direct_computation() -> None:
    named, opt, tau = setup("onties")
    before = {n: p.detach().clone() for n, p in named}
    grads = {n: p.grad.clone() for n, p in named}
    opt.step()

    def topk(x: torch.Tensor) -> torch.Tensor:
        k = max(1, int(x.numel() * P))
        thresh = x.abs().flatten().sort(descending=True).values[k - 1]
        return (x.abs() >= thresh).float()

    for n, p in named:
        t = tau[n] * topk(tau[n])
        d = adam_delta(grads[n])
        d = d * topk(d)
        s = torch.where(t + d >= 0, 1.0, -1.0)
        want = before[n] + ALPHA * t * (torch.sign(t) == s) + (1 - ALPHA) * d * (torch.sign(d) == s)
        want = want - LR * WD * want
        assert torch.allclose(p.detach(), want, atol=1e-7), n


def test_step_k_updates_every_parameter_and_merges_the_sum() -> None:
    named, opt, tau = setup("ondare", k=2)
    start = {n: p.detach().clone() for n, p in named}
    opt.step()  # t = 1: plain Adam for *all* parameters (the reference returned after the first)
    p1 = {}
    for n, p in named:
        want = start[n] + adam_delta(p.grad)
        want = want - LR * WD * want
        assert torch.allclose(p.detach(), want, atol=1e-7), n
        p1[n] = p.detach().clone()
    opt.step()  # t = 2: roll back the cached update and merge the sum of both
    gen = torch.Generator().manual_seed(11)
    masks_tau = {n: (torch.rand(p.shape, generator=gen) < P).float() for n, p in named}
    for n, p in named:
        g = p.grad
        d1 = adam_delta(g)
        m2 = B1 * (1 - B1) * g + (1 - B1) * g
        v2 = B2 * (1 - B2) * g * g + (1 - B2) * g * g
        d2 = -(LR * math.sqrt(1 - B2**2) / (1 - B1**2)) * m2 / (v2.sqrt() + EPS)
        d = (d1 + d2) * (torch.rand(p.shape, generator=gen) < P).float() / P
        t = (tau[n] * masks_tau[n] / P).clamp(-1, 1)
        want = p1[n] - d1 + ALPHA * t + (1 - ALPHA) * d
        want = want - LR * WD * want
        assert torch.allclose(p.detach(), want, atol=1e-6), n


def test_state_roundtrip_continues_identically() -> None:
    named, opt, _ = setup("ondare")
    opt.step()
    sd = copy.deepcopy(opt.state_dict())  # as saved to disk: no tensors shared
    named2, opt2, _ = setup("ondare")
    with torch.no_grad():
        for (_, a), (_, b) in zip(named, named2, strict=True):
            b.copy_(a)
    opt2.load_state_dict(sd)
    opt.step()
    opt2.step()
    for (_, a), (_, b) in zip(named, named2, strict=True):
        assert torch.equal(a, b)


def test_task_vector_from_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    base = {"w": torch.ones(3, 2), "v": torch.zeros(4)}
    sft = {"w": torch.full((3, 2), 1.5), "v": torch.arange(4.0)}
    (tmp_path / "base").mkdir()
    (tmp_path / "sft").mkdir()
    save_file(base, str(tmp_path / "base" / "model.safetensors"))
    save_file(sft, str(tmp_path / "sft" / "model.safetensors"))
    tau = task_vector(["w", "v"], tmp_path / "sft", tmp_path / "base")
    assert torch.equal(tau["w"], torch.full((3, 2), 0.5))
    assert torch.equal(tau["v"], torch.arange(4.0))
    with pytest.raises(KeyError, match="nope"):
        task_vector(["nope"], tmp_path / "sft", tmp_path / "base")
