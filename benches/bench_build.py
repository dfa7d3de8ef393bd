"""Benchmark: ``csft-data build`` over N records (default 1M) of replicated real data, on this
machine's cores. Prints wall time per stage, records/s and peak RSS of the build process.

The corpus is bench_dedup's: real answers from the shared data (Huatuo-26M, CMtMedQA, Toyhom,
DISC-Med-SFT) recombined into distinct texts, with 5% near and 3% exact duplicates planted.
Each text becomes an Alpaca record (instruction: its first clause, output: the rest), spread
over four sources read by the ``alpaca`` adapter. 500 instructions are listed as an
evaluation file, so decontamination has real hits, and a byte-level BPE tokenizer trained here
on the base texts counts token lengths under the intern2 template (cut-off 1024, drop).

    python benches/bench_build.py                 # 1M records
    python benches/bench_build.py --records 100000
    python benches/bench_build.py --memory-limit 1GB   # the recipe's [engine] memory_limit
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import StageClock, child_result, machine_line, print_stages, run_child
from bench_dedup import build_corpus, load_base_texts

SOURCES = 4
EVAL_ITEMS = 500


def write_corpus(work: Path, n: int, seed: int) -> Path:
    """The recipe folder for ``n`` records (made once, reused)."""
    d = work / f"corpus-{n}-{seed}"
    if (d / "recipe.toml").is_file():
        return d
    d.mkdir(parents=True, exist_ok=True)
    base = load_base_texts()
    texts, _ = build_corpus(n, base, seed)
    rng = random.Random(seed)
    files = [(d / f"src{k}.jsonl").open("w", encoding="utf-8") for k in range(SOURCES)]
    questions = []
    for i, t in enumerate(texts):
        cut = max(8, min(len(t) // 3, t.find("。") + 1 if "。" in t[:80] else 40))
        rec = {"instruction": t[:cut], "input": "", "output": t[cut:] or t, "id": str(i)}
        files[i % SOURCES].write(json.dumps(rec, ensure_ascii=False) + "\n")
        if len(t[:cut]) >= 20 and rng.random() < 0.002 and len(questions) < EVAL_ITEMS:
            questions.append({"question": t[:cut]})
    for f in files:
        f.close()
    with (d / "eval.jsonl").open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    train_tokenizer(base, d / "tokenizer.json")
    sources = "\n".join(
        f'[[source]]\nname = "src{k}"\nadapter = "alpaca"\npath = "src{k}.jsonl"\n'
        for k in range(SOURCES)
    )
    (d / "recipe.toml").write_text(
        f"""seed = 42
[output]
dir = "out"
name = "bench"

{sources}
[normalize]
convert = "t2s"

[dedup]
threshold = 0.8
scope = "both"

[decontaminate]
eval = [{{ path = "eval.jsonl", fields = ["question"] }}]

[lengths]
tokenizer = "tokenizer.json"
template = "intern2"
cutoff_len = 1024
policy = "drop"

[split]
val_ratio = 0.02
""",
        encoding="utf-8",
    )
    return d


def train_tokenizer(texts: list[str], path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=16000,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.save(str(path))


def child(cfg: dict[str, Any]) -> None:
    import dataclasses

    from csft_data.pipeline import build, load_recipe

    d = Path(cfg["dir"])
    recipe = load_recipe(d / "recipe.toml", d / "out")
    if cfg["memory_limit"] is not None:
        engine = dataclasses.replace(recipe.engine, memory_limit=cfg["memory_limit"])
        recipe = dataclasses.replace(recipe, engine=engine)
    clock = StageClock()
    t0 = time.perf_counter()
    result = build(recipe, on_stage=clock)
    clock.stop()
    child_result(
        {
            "seconds": time.perf_counter() - t0,
            "stages": clock.seconds,
            "split": result.manifest["split"],
            "stage_counts": [
                [
                    st["stage"],
                    sum(c["in"] for c in st["sources"].values()),
                    sum(c["out"] for c in st["sources"].values()),
                ]
                for st in result.manifest["stages"]
            ],
        }
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--work", type=Path, default=Path("/tmp/csft-bench-build"))
    p.add_argument(
        "--memory-limit",
        help="the recipe's [engine] memory_limit (e.g. 1GB: the dedup stage runs out of core "
        "past it); default: the recipe's (none: the dedup's automatic choice)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    print(machine_line())
    t = time.perf_counter()
    d = write_corpus(args.work, args.records, args.seed)
    size = sum(f.stat().st_size for f in d.glob("src*.jsonl"))
    print(
        f"corpus: {args.records:,} records in {SOURCES} files, {size / 1e6:,.0f} MB "
        f"(made or reused in {time.perf_counter() - t:.0f}s)"
    )
    import shutil

    shutil.rmtree(d / "out", ignore_errors=True)  # a cold build: no cached stage
    r = run_child(__file__, {"dir": str(d), "memory_limit": args.memory_limit})
    limit = f" (memory_limit {args.memory_limit})" if args.memory_limit else ""
    print(
        f"build{limit}: {r['seconds']:.1f}s wall, {args.records / r['seconds']:,.0f} records/s, "
        f"peak RSS {r['rss_mb']:,.0f} MB"
    )
    print_stages(r)
    sp = r["split"]
    print(f"  train {sp['train']:,}, val {sp['val']:,} ({sp['groups']:,} groups)")


if __name__ == "__main__":
    main()
