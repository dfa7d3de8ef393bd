"""Speed of ``eval cmb`` (``loglik`` and ``gen`` modes) on a randomly initialised model.

Builds a Llama-shaped model from a config (``--shape 7b``: LLaMA-7B, 32 layers × 4096, for a
GPU; ``--shape tiny``: 2 layers × 64 for a CPU smoke run), a byte-level BPE tokenizer trained in
the run on the real Chinese texts of ``../shared/data``, and N synthetic items of CMB's shape:
questions and options taken from the CMExam sample (real exam lengths), CMB's exam types and
classes, and CMB's share of multi-answer items (1,190 of 11,200 = 10.6%). It then times the
whole evaluation (prompt rendering with the ``intern2`` template, tokenization, batching,
model) in each mode and prints items/s and the projected time for CMB's 11,200 test items. The
weights are random, so the answers are meaningless and ``gen`` always runs to
``--max-new-tokens`` (its worst case); only the speed is measured.

    python benches/bench_eval.py --shape tiny --items 200          # CPU smoke run
    python benches/bench_eval.py --shape 7b --items 11200 --batch-size 64   # one GPU

The last line printed is one JSON object of the figures (``benches/gpu_check.py`` records it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from _harness import machine_line

REPO = Path(__file__).resolve().parent.parent
#: ``CSFT_SHARED_DATA`` points elsewhere (the GPU check carries a copy of the files it needs)
SHARED = Path(os.environ.get("CSFT_SHARED_DATA") or REPO.parent / "shared" / "data")
CMB_TEST_ITEMS = 11_200
MULTI_SHARE = 1_190 / 11_200
CLASSES = {
    "医师考试": ["规培结业", "执业助理医师", "执业医师", "中级职称", "高级职称"],
    "护理考试": ["护士执业资格", "护师执业资格", "主管护师", "高级护师"],
    "药师考试": ["执业西药师", "执业中药师", "初级药士", "初级药师", "主管药师"],
    "医技考试": ["医技士", "医技师", "主管技师"],
    "专业知识考试": ["基础医学", "临床医学", "预防医学与公共卫生学", "中医学与中药学"],
    "医学考研": ["护理学", "考研政治", "西医综合", "中医综合"],
}
SHAPES: dict[str, dict[str, int]] = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=8000,
    ),
    "7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
    ),
}


def cmexam_rows() -> list[dict[str, str]]:
    path = SHARED / "cmexam" / "cmexam_val_part1.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def synthetic_items(n: int, seed: int) -> list[Any]:
    from csft_train.evaluate.items import McqaItem

    rng = random.Random(seed)
    rows = cmexam_rows()
    pairs = [(t, c) for t, cs in CLASSES.items() for c in cs]
    items = []
    for i in range(n):
        r = rows[i % len(rows)]
        options = {}
        for part in r["Options"].split("\\n"):
            part = part.strip()
            if part:
                options[part[0]] = part[1:].strip()
        multi = rng.random() < MULTI_SHARE
        letters = sorted(options)
        answer = (
            "".join(sorted(rng.sample(letters, rng.randint(2, len(letters)))))
            if multi
            else rng.choice(letters)
        )
        exam_type, exam_class = pairs[i % len(pairs)]
        items.append(
            McqaItem(
                id=i + 1,
                question=r["Question"],
                options=options,
                answer=answer,
                multi=multi,
                exam_type=exam_type,
                exam_class=exam_class,
                question_type="多项选择题" if multi else "单项选择题",
            )
        )
    return items


def texts_for_tokenizer() -> list[str]:
    texts = []
    for r in cmexam_rows():
        texts += [r["Question"], r["Options"].replace("\\n", "\n"), r["Explanation"]]
    for rec in json.loads((SHARED / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8")):
        texts += [str(rec.get("instruction", "")), str(rec.get("output", ""))]
    return [t for t in texts if t]


def build_tokenizer(vocab: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts_for_tokenizer(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )


def build_model(shape: str, device: str, dtype: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        **SHAPES[shape],
        max_position_embeddings=4096,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in the final dtype: half the memory for 7B
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(default)
    model.eval()
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--modes", default="loglik,gen")
    ap.add_argument("--gen-items", type=int, help="time gen on this many items (default all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    import transformers

    from csft_train.evaluate.engine import resolve_device, resolve_dtype
    from csft_train.evaluate.mcqa import McqaConfig, evaluate_mcqa
    from csft_train.evaluate.prompt import ChatRenderer

    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    print(machine_line())
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}; device {device} "
        f"({gpu}), dtype {dtype}; shape {args.shape}; batch {args.batch_size}"
    )
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(min(SHAPES[args.shape]["vocab_size"], 8000))
    model = build_model(args.shape, device, dtype)
    items = synthetic_items(args.items, args.seed)
    renderer = ChatRenderer(tokenizer, "intern2", "")
    print(
        f"setup {time.perf_counter() - t0:.1f} s; {len(items):,} items, "
        f"{sum(i.multi for i in items):,} multi-answer"
    )
    figures: dict[str, Any] = {
        "device": gpu if device == "cuda" else "cpu",
        "shape": args.shape,
        "batch_size": args.batch_size,
        "dtype": str(dtype),
    }
    for mode in args.modes.split(","):
        subset = items if mode != "gen" or args.gen_items is None else items[: args.gen_items]
        config = McqaConfig(
            mode=mode,  # type: ignore[arg-type]
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
        )
        result = evaluate_mcqa(subset, model, tokenizer, renderer, config)
        ips = result.items_per_second
        c = result.counts
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
        print(
            f"{mode:>6}: {len(subset):,} items, {ips:,.1f} items/s ({parts}); loglik "
            f"{c['loglik']:,}, generated {c['generated']:,} (multi fallback "
            f"{c['multi_fallback']:,}); projected {CMB_TEST_ITEMS:,} items: "
            f"{CMB_TEST_ITEMS / ips / 60:.1f} min"
        )
        sys.stdout.flush()
        figures[mode] = {
            "items": len(subset),
            "items_per_s": round(ips, 2),
            "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
            "projected_cmb_test_min": round(CMB_TEST_ITEMS / ips / 60, 2),
            "max_new_tokens": args.max_new_tokens if mode == "gen" else None,
        }
    print(json.dumps(figures))  # the last line: what benches/gpu_check.py records


if __name__ == "__main__":
    main()
