"""Benchmark: ``csft-data pretrain`` over N documents (default 1M) of replicated real data, on
this machine's cores. Prints wall time per stage, documents/s, tokens/s and peak RSS of the
build process.

The documents are bench_dedup's texts (real answers of the shared data recombined into
distinct texts, 5% near and 3% exact duplicates planted), spread over four JSONL sources of
categories book, dialogue, article and general (``format = "records"``). Stages: t2s,
dedup (per source, then across), quality (defaults), tokens (a 16k byte-level BPE trained here
on the base texts), pack (everything once, seeded shuffle, 2048-token rows).

    python benches/bench_pretrain.py                  # 1M documents
    python benches/bench_pretrain.py --documents 100000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import StageClock, child_result, machine_line, print_stages, run_child
from bench_build import train_tokenizer
from bench_dedup import build_corpus, load_base_texts

CATEGORIES = ("book", "dialogue", "article", "general")


def write_corpus(work: Path, n: int, seed: int) -> Path:
    """The recipe folder for ``n`` documents (made once, reused)."""
    d = work / f"corpus-{n}-{seed}"
    if (d / "recipe.toml").is_file():
        return d
    d.mkdir(parents=True, exist_ok=True)
    base = load_base_texts()
    texts, _ = build_corpus(n, base, seed)
    files = [(d / f"{c}.jsonl").open("w", encoding="utf-8") for c in CATEGORIES]
    for i, t in enumerate(texts):
        files[i % len(files)].write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    for f in files:
        f.close()
    train_tokenizer(base, d / "tokenizer.json")
    sources = "\n".join(
        f'[[source]]\nname = "{c}"\ncategory = "{c}"\nformat = "records"\npath = "{c}.jsonl"\n'
        for c in CATEGORIES
    )
    (d / "recipe.toml").write_text(
        f"""kind = "pretrain"
seed = 42
[output]
dir = "out"

{sources}
[normalize]
convert = "t2s"

[dedup]
threshold = 0.8
scope = "both"

[pack]
tokenizer = "tokenizer.json"
eos = "</s>"
seq_len = 2048
sequences_per_shard = 8192
""",
        encoding="utf-8",
    )
    return d


def child(cfg: dict[str, Any]) -> None:
    from csft_data.pretrain import build_pretrain

    d = Path(cfg["dir"])
    clock = StageClock()
    t0 = time.perf_counter()
    result = build_pretrain(d / "recipe.toml", d / "out", on_stage=clock)
    clock.stop()
    counts = [
        [
            st.name,
            sum(c["in"] for c in st.stats["sources"].values()),
            sum(c["out"] for c in st.stats["sources"].values()),
        ]
        for st in result.stages
    ]
    m = result.manifest
    child_result(
        {
            "seconds": time.perf_counter() - t0,
            "stages": clock.seconds,
            "stage_counts": counts,
            "documents": m["documents"],
            "tokens": m["tokens"],
            "sequences": m["sequences"],
        }
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--documents", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--work", type=Path, default=Path("/tmp/csft-bench-pretrain"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    print(machine_line())
    t = time.perf_counter()
    d = write_corpus(args.work, args.documents, args.seed)
    size = sum(f.stat().st_size for f in d.glob("*.jsonl"))
    print(
        f"corpus: {args.documents:,} documents in {len(CATEGORIES)} files, {size / 1e6:,.0f} MB "
        f"(made or reused in {time.perf_counter() - t:.0f}s)"
    )
    shutil.rmtree(d / "out", ignore_errors=True)  # a cold build: no cached stage
    r = run_child(__file__, {"dir": str(d)})
    secs, tokens = r["seconds"], r["tokens"]["packed"]
    print(
        f"pretrain: {secs:.1f}s wall, {args.documents / secs:,.0f} documents/s, "
        f"{tokens / secs:,.0f} tokens/s ({tokens:,} tokens packed, {r['sequences']:,} rows), "
        f"peak RSS {r['rss_mb']:,.0f} MB"
    )
    print_stages(r)


if __name__ == "__main__":
    main()
