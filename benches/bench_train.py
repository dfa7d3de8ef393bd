"""SFT training throughput: tokens/s and MFU of the csft_train step (forward, per-token NLL
summed over the batch, backward, gradient clipping, AdamW) on a randomly initialised model.

Shapes (``--shape``): ``0.5b`` (Qwen2-0.5B: hidden 896, 24 layers, 14 heads / 2 KV heads,
intermediate 4864, vocab 151,936, tied embeddings), ``7b`` (LLaMA-7B / InternLM-7B: hidden
4096, 32 layers × 32 heads, intermediate 11008, vocab 32,000; meant with ``--lora``) and
``tiny`` (2 layers, hidden 64, vocab 2k: a CPU run in seconds that checks the script itself).
Rows are ``--batch`` × ``--cutoff`` random token ids, the first quarter of each example masked
as SFT masks the prompt. ``--packing K`` makes each row K examples packed back to back (position
ids restart per example, so transformers keeps attention inside each example, as the trainer's
``[data] packing``).

Precision as the trainer's ``[model] dtype`` (``bf16``, the default on CUDA: trainable weights
and AdamW state in fp32, frozen weights in bf16, bf16 autocast, fused AdamW; or ``pure_bf16``,
``fp32``) and attention as ``[model] attn_implementation = "auto"`` (flash-attention 2 when
installed, else sdpa). ``--lora`` wraps the model with the trainer's own ``apply_lora`` (peft,
r 16, all linear layers; the base frozen in bf16).

MFU = model FLOPs per second / ``--peak-tflops`` (default 989: dense bf16 of the H100 SXM and
H200). Model FLOPs per trained token (PaLM, appendix B): ``6·N + 12·L·d·S_eff`` for full
fine-tuning, where N counts every parameter (the tied embedding once: it is the LM head's matrix)
and the second term is attention over S_eff, the length of one example (not halved for the causal
mask, as PaLM counts it); with LoRA the frozen weights need no weight gradient, so
``4·N_frozen + 6·N_lora + 12·L·d·S_eff``. Gradient-checkpointing recomputation is not counted
(it is work, not model FLOPs). Printed as one JSON line.

    python benches/bench_train.py --shape 0.5b --batch 8 --cutoff 2048
    python benches/bench_train.py --shape 7b --lora --batch 2 --cutoff 2048 --packing 4
    python benches/bench_train.py --shape tiny          # CPU check of the script
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        arch="qwen2",
        vocab_size=2048,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
    "0.5b": dict(
        arch="qwen2",
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        rope_theta=1_000_000.0,
    ),
    "7b": dict(
        arch="llama",
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        tie_word_embeddings=False,
    ),
}


def build(shape: str, device: Any, dtype: Any, attn: str) -> Any:
    """The model, initialised directly on ``device`` in ``dtype`` (a 7B model in fp32 on the
    CPU first would take minutes)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    kw = dict(SHAPES[shape])
    arch = kw.pop("arch")
    cls, cfg_cls = (
        (Qwen2ForCausalLM, Qwen2Config) if arch == "qwen2" else (LlamaForCausalLM, LlamaConfig)
    )
    cfg = cfg_cls(max_position_embeddings=32768, **kw)
    cfg._attn_implementation = attn
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return cls(cfg)
    finally:
        torch.set_default_dtype(default)


def packed_positions(batch: int, cutoff: int, per_row: int, device: Any) -> Any:
    """Position ids of rows holding ``per_row`` examples of equal length back to back."""
    import torch

    size = cutoff // per_row
    one = torch.cat([torch.arange(size)] * per_row + [torch.arange(cutoff - size * per_row)])
    return one.unsqueeze(0).repeat(batch, 1).to(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="0.5b")
    ap.add_argument("--tiny", action="store_true", help="= --shape tiny (CPU check)")
    ap.add_argument("--cutoff", type=int, default=None, help="tokens per row (1024; tiny 128)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20, help="measured steps (after 3 warm-up)")
    ap.add_argument("--packing", type=int, default=1, help="examples packed per row")
    ap.add_argument("--lora", action="store_true", help="LoRA r 16 on all linear layers")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="peak bf16 TFLOP/s")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument(
        "--compile", action="store_true", help="torch.compile the model (warm-up compiles)"
    )
    ap.add_argument(
        "--dtype", choices=["bf16", "pure_bf16", "fp32"], default="bf16", help="as [model] dtype"
    )
    args = ap.parse_args()
    shape = "tiny" if args.tiny else args.shape

    import torch

    from csft_train.config import parse_config
    from csft_train.engine import attn_implementation, pick_precision, token_nll_sum
    from csft_train.lora import apply_lora

    cuda = torch.cuda.is_available() and shape != "tiny"
    device = torch.device("cuda" if cuda else "cpu")
    cfg = parse_config(
        {
            "model": {
                "path": ".",
                "dtype": args.dtype if cuda else "fp32",
                "gradient_checkpointing": args.grad_checkpointing,
            },
            "lora": {"enabled": args.lora, "r": 16, "alpha": 32, "dropout": 0.0},
        }
    )
    prec = pick_precision(cfg, device)
    attn = attn_implementation(cfg, device)
    cutoff = args.cutoff or (128 if shape == "tiny" else 1024)
    torch.manual_seed(0)
    t_build = time.perf_counter()
    model = build(shape, device, prec.frozen if args.lora else prec.master, attn)
    n_params = sum(p.numel() for p in model.parameters())
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    if args.grad_checkpointing:
        model.gradient_checkpointing_enable()
    if args.lora:
        model = apply_lora(cfg, model)
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.to(prec.master)
    model.train()
    if args.compile:
        model = torch.compile(model)
    build_s = time.perf_counter() - t_build
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-5, fused=cuda)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, cutoff), device=device)
    labels = ids.clone()
    per_row = max(1, args.packing)
    size = cutoff // per_row
    for k in range(per_row):
        labels[:, k * size : k * size + size // 4] = -100  # each example's prompt quarter
    inputs: dict[str, Any] = {"input_ids": ids}
    if per_row > 1:
        inputs["position_ids"] = packed_positions(args.batch, cutoff, per_row, device)
    n_tok = int((labels[:, 1:] != -100).sum())

    def step() -> float:
        with prec.autocast(device):
            logits = model(**inputs, use_cache=False).logits
        loss = token_nll_sum(logits, labels) / n_tok
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(3):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    loss = 0.0
    for _ in range(args.steps):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tps = args.batch * cutoff * args.steps / dt
    s_eff = size  # attention span per example
    attn_flops = 12 * layers * hidden * s_eff
    # n_params is counted before the adapters are added: with LoRA, all of it is frozen
    dense = 4 * n_params + 6 * n_train if args.lora else 6 * n_params
    peak = args.peak_tflops * 1e12
    out = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "shape": shape,
        "mode": "lora" if args.lora else "full",
        "precision": prec.describe(),
        "attn": attn,
        "params_m": round(n_params / 1e6, 1),
        "trainable_m": round(n_train / 1e6, 2),
        "cutoff": cutoff,
        "batch": args.batch,
        "packed_per_row": per_row,
        "grad_checkpointing": args.grad_checkpointing,
        "compile": args.compile,
        "steps": args.steps,
        "build_s": round(build_s, 1),
        "step_s": round(dt / args.steps, 4),
        "tokens_per_s": round(tps, 1),
        "flops_per_token": dense + attn_flops,
        "flops_formula": ("4*N+6*N_lora" if args.lora else "6*N") + "+12*L*d*S",
        "mfu": round((dense + attn_flops) * tps / peak, 4),
        "mfu_dense_only": round(dense * tps / peak, 4),
        "peak_tflops": args.peak_tflops,
        "loss": round(loss, 4),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
