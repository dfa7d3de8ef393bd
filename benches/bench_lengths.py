"""Token counting: csft_data (Rust ``tokenizers`` crate) vs Hugging Face ``tokenizers``
``encode_batch`` (Python), in one run.

Corpus: the real records of ``../shared/data`` (CMtMedQA with history, Toyhom ask/answer,
Huatuo-26M, DISC-Med-SFT conversations) in Alpaca form, repeated to N records (default
100,000). Each record's text for the count benchmark is ``instruction + "\\n" + output`` (all
turns joined for multi-turn records). Two tokenizers are trained here on the base texts and
saved to a temp dir: a byte-level BPE (GPT-2/Qwen style) and a Metaspace BPE (sentencepiece/
LLaMA style), 32k vocab each, with ``<s>``, ``</s>``, ``<|im_start|>``, ``<|im_end|>``.

Measurements, each in a fresh subprocess (its own peak RSS from ``VmHWM``), timed around the
counting only; the text list is loaded before the timer starts:

- ``hf encode_batch``: ``tok.encode_batch(texts, add_special_tokens=False)`` then
  ``len(e.ids)`` per encoding, ``TOKENIZERS_PARALLELISM=true`` (both cores);
- ``hf encode_batch_fast``: the same with ``encode_batch_fast`` (no offsets), where present;
- ``csft count_tokens``: ``csft_data.count_tokens(counter, texts)`` (a loaded TokenCounter,
  the exact fast BPE path of ``rust/lengths/bpe.rs``);
- ``csft count (reference)``: the same with ``TokenCounter(path, fast=False)``: every text
  through the ``tokenizers`` crate (``encode_fast``), what counting did before the fast path;
- ``csft lengths (file)``: ``csft_data.token_lengths`` end to end from the JSONL file
  (reading, rendering with the intern2 template, counting every element, truncation at
  512/1024/2048, bucket file written) - more tokens per record than the plain count.

The counts of the plain runs are checked equal (sum and a hash of the count list), and the
ratio of the fast path over the reference path is printed.

Run: ``python benches/bench_lengths.py`` (100k records, about a minute on 2 cores, plus the
tokenizer training); ``--records N`` to change the size.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import child_result, machine_line
from _harness import run_child as harness_run_child

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SPECIALS = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def base_records() -> list[dict[str, Any]]:
    """Real records in Alpaca form (history kept for CMtMedQA / DISC-Med-SFT)."""
    out: list[dict[str, Any]] = []
    for rec in json.loads((SHARED / "cmtmedqa" / "CMtMedQA_test.json").read_text("utf-8")):
        instruction = rec.get("instruction", rec.get("instruct"))
        if isinstance(instruction, str) and isinstance(rec.get("output"), str):
            out.append(
                {
                    "instruction": instruction,
                    "input": rec.get("input") or "",
                    "output": rec["output"],
                    "history": rec.get("history") or [],
                }
            )
    raw = (SHARED / "toyhom_cmdd" / "样例_内科5000-6000.csv").read_bytes().decode("gbk")
    for row in csv.DictReader(io.StringIO(raw)):
        if row.get("ask") and row.get("answer"):
            out.append({"instruction": row["ask"], "input": "", "output": row["answer"]})
    for rec in json.loads((SHARED / "huatuo26m" / "huatuo26M_test.json").read_text("utf-8")):
        ins, outp = rec["instruction"], rec["output"]
        ins = ins[0] if isinstance(ins, list) and ins else ins
        outp = outp[0] if isinstance(outp, list) and outp else outp
        if isinstance(ins, str) and isinstance(outp, str):
            out.append({"instruction": ins, "input": "", "output": outp})
    for line in (SHARED / "disc_med_sft" / "test_examples.jsonl").read_text("utf-8").splitlines():
        turns = [t["content"] for t in json.loads(line)["conversation"]]
        if len(turns) >= 2 and len(turns) % 2 == 0:
            pairs = [turns[i : i + 2] for i in range(0, len(turns) - 2, 2)]
            out.append(
                {"instruction": turns[-2], "input": "", "output": turns[-1], "history": pairs}
            )
    return out


def record_text(rec: dict[str, Any]) -> str:
    parts = [m for pair in rec.get("history") or [] for m in pair]
    parts += [rec["instruction"], rec["output"]]
    return "\n".join(parts)


def train_tokenizers(texts: list[str], work: Path, vocab: int) -> dict[str, Path]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    paths = {}
    for kind in ("bytelevel", "metaspace"):
        if kind == "bytelevel":
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            alphabet, specials = pre_tokenizers.ByteLevel.alphabet(), SPECIALS
        else:
            tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
            tok.pre_tokenizer = pre_tokenizers.Metaspace()
            tok.decoder = decoders.Metaspace()
            alphabet, specials = [], ["<unk>", *SPECIALS]
        trainer = trainers.BpeTrainer(
            vocab_size=vocab, special_tokens=specials, initial_alphabet=alphabet,
            show_progress=False,
        )  # fmt: skip
        tok.train_from_iterator(texts, trainer)
        paths[kind] = work / f"{kind}.json"
        tok.save(str(paths[kind]))
    return paths


# --------------------------------------------------------------------------- children


def digest(counts: list[int]) -> dict[str, Any]:
    blob = ",".join(map(str, counts)).encode()
    return {"sum": sum(counts), "hash": hashlib.sha1(blob).hexdigest()[:12]}


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    method = cfg["method"]
    if method == "csft_lengths":
        import csft_data

        counter = csft_data.TokenCounter(cfg["tokenizer"])
        t = time.perf_counter()
        stats = csft_data.token_lengths(
            [cfg["corpus"]], counter, template="intern2", buckets=cfg["buckets"]
        )
        dt = time.perf_counter() - t
        total = stats["total"]
        return {"seconds": dt, "records": total["counted"], "tokens": total["total_tokens"]}
    texts = json.loads(Path(cfg["texts"]).read_text("utf-8"))
    if method.startswith("hf"):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(cfg["tokenizer"])
        encode = tok.encode_batch_fast if method == "hf_fast" else tok.encode_batch
        t = time.perf_counter()
        counts = [len(e.ids) for e in encode(texts, add_special_tokens=False)]
        dt = time.perf_counter() - t
    else:
        import csft_data

        counter = csft_data.TokenCounter(cfg["tokenizer"], fast=method == "csft")
        if counter.fast != (method == "csft"):
            raise SystemExit(f"{method}: the fast path is {counter.fast} for {cfg['tokenizer']}")
        t = time.perf_counter()
        counts = csft_data.count_tokens(counter, texts).tolist()
        dt = time.perf_counter() - t
    return {"seconds": dt, "records": len(counts), "tokens": sum(counts), **digest(counts)}


def run_child(cfg: dict[str, Any]) -> dict[str, Any]:
    return harness_run_child(__file__, cfg, env={"TOKENIZERS_PARALLELISM": "true"})


def versions() -> str:
    import csft_data

    tk = importlib.metadata.version("tokenizers")
    return f"csft_data {csft_data.__version__} (tokenizers crate 0.23.2), tokenizers {tk}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs per method; the best is kept")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_result(child(json.loads(args.child)))
        return

    print(machine_line())
    print(f"versions: {versions()}")
    base = base_records()
    records = [base[i % len(base)] for i in range(args.records)]
    texts = [record_text(r) for r in records]
    avg = sum(map(len, texts)) / len(texts)
    print(f"corpus: {len(base):,} real records repeated to {len(records):,}; avg {avg:.0f} chars")
    with tempfile.TemporaryDirectory(prefix="bench_lengths_") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        toks = train_tokenizers([record_text(r) for r in base], work, args.vocab)
        print(f"trained byte-level and Metaspace BPE ({args.vocab:,} vocab) in "
              f"{time.perf_counter() - t:.1f} s")  # fmt: skip
        texts_path = work / "texts.json"
        texts_path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        corpus = work / "corpus.jsonl"
        with corpus.open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"corpus JSONL {corpus.stat().st_size / 1e6:.1f} MB")
        rows: list[tuple[str, str, dict[str, Any]]] = []
        methods = [
            ("hf encode_batch", "hf"),
            ("hf encode_batch_fast", "hf_fast"),
            ("csft count_tokens", "csft"),
            ("csft count (reference)", "csft_reference"),
            ("csft lengths (file)", "csft_lengths"),
        ]
        for kind, tok_path in toks.items():
            for name, method in methods:
                cfg = {
                    "method": method,
                    "tokenizer": str(tok_path),
                    "texts": str(texts_path),
                    "corpus": str(corpus),
                    "buckets": str(work / "buckets.jsonl"),
                }
                runs = [run_child(cfg) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["seconds"])
                rows.append((kind, name, best))
                print(f"  done: {kind} {name} ({best['seconds']:.2f} s)", flush=True)
        print()
        print(
            f"{'tokenizer':<10} {'method':<22} {'records':>8} {'seconds':>8} {'records/s':>10} "
            f"{'tokens/s':>11} {'peak RSS':>9} {'vs hf encode_batch':>19}"
        )
        for kind in toks:
            mine = {name: r for k, name, r in rows if k == kind}
            ref = mine["hf encode_batch"]
            ref_speed = ref["records"] / ref["seconds"]
            for name, r in mine.items():
                speed = r["records"] / r["seconds"]
                print(
                    f"{kind:<10} {name:<22} {r['records']:>8,} {r['seconds']:>8.2f} "
                    f"{speed:>10,.0f} {r['tokens'] / r['seconds']:>11,.0f} "
                    f"{r['rss_mb']:>6.0f} MB {speed / ref_speed:>18.2f}x"
                )
            fast, slow = mine["csft count_tokens"], mine["csft count (reference)"]
            same = fast["hash"] == ref["hash"] == slow["hash"]
            print(
                f"{kind}: counts identical to hf (fast and reference paths): {same} "
                f"({ref['tokens']:,} tokens over {ref['records']:,} texts); fast path "
                f"{slow['seconds'] / fast['seconds']:.2f}x the reference path"
            )
            if not same:
                raise SystemExit(f"{kind}: csft_data counts differ from HF tokenizers")
    print(f"load avg at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
