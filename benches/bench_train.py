"""SFT training throughput: tokens/s and MFU of the csft_train step (forward, per-token NLL
summed over the batch, backward, gradient clipping, AdamW) on a randomly initialised
Qwen2-style model.

Default: a ~0.5B config (Qwen2-0.5B shape: hidden 896, 24 layers, 14 heads / 2 KV heads,
intermediate 4864, vocab 151,936, tied embeddings) at cut-off 1024, batch 4 full-length rows of
random token ids, in the trainer's precision (``--dtype bf16``, the default on CUDA: fp32 master
weights and AdamW state, bf16 autocast, fused AdamW; ``pure_bf16``: all in bf16), with
flash-attention 2 when installed (else sdpa). MFU = 6·N·tokens/s / peak FLOPs, N = all
parameters (the non-embedding MFU is printed too); the peak is ``--peak-tflops`` (default 989,
H100 SXM dense bf16).

Run: ``python benches/bench_train.py`` on a GPU box; ``--tiny`` (2 layers, hidden 64, vocab 2k,
cut-off 128) runs on CPU in seconds to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def build(tiny: bool, device: Any, dtype: Any, attn: str) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if tiny:
        cfg = Qwen2Config(
            vocab_size=2048,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
        )
    else:
        cfg = Qwen2Config(
            vocab_size=151936,
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            tie_word_embeddings=True,
            rope_theta=1_000_000.0,
        )
    cfg._attn_implementation = attn
    model = Qwen2ForCausalLM(cfg).to(device=device, dtype=dtype)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny model on CPU, to test the script")
    ap.add_argument("--cutoff", type=int, default=None, help="tokens per row (1024; tiny 128)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20, help="measured steps (after 3 warm-up)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="peak bf16 TFLOPs")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument(
        "--dtype", choices=["bf16", "pure_bf16", "fp32"], default="bf16", help="as [model] dtype"
    )
    args = ap.parse_args()

    import torch

    from csft_train.config import parse_config
    from csft_train.engine import pick_precision, token_nll_sum

    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.device("cuda" if cuda else "cpu")
    dtype = args.dtype if cuda else "fp32"
    prec = pick_precision(parse_config({"model": {"path": ".", "dtype": dtype}}), device)
    attn = "sdpa"
    if cuda:
        try:
            import flash_attn  # noqa: F401

            attn = "flash_attention_2"
        except ImportError:
            pass
    cutoff = args.cutoff or (128 if args.tiny else 1024)
    torch.manual_seed(0)
    model = build(args.tiny, device, prec.master, attn)
    if args.grad_checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=cuda)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, cutoff), device=device)
    labels = ids.clone()
    labels[:, : cutoff // 4] = -100  # a prompt quarter, as SFT masks it
    n_tok = int((labels[:, 1:] != -100).sum())

    def step() -> float:
        with prec.autocast(device):
            logits = model(input_ids=ids, use_cache=False).logits
        loss = token_nll_sum(logits, labels) / n_tok
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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
    peak = args.peak_tflops * 1e12
    out = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "precision": prec.describe(),
        "attn": attn,
        "params_m": round(n_params / 1e6, 1),
        "cutoff": cutoff,
        "batch": args.batch,
        "steps": args.steps,
        "tokens_per_s": round(tps, 1),
        "mfu": round(6 * n_params * tps / peak, 4),
        "mfu_non_embedding": round(6 * (n_params - n_embed) * tps / peak, 4),
        "peak_tflops": args.peak_tflops,
        "loss": round(loss, 4),
        "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
