"""Reading throughput: csft_data's Rust readers vs the usual Python glue, in one run.

Peers, on the same real files from ``../shared/data`` (replicated to a few tens of MB):
- GBK CSV: Python ``csv`` over a GBK-decoded file (polars cannot read GBK itself) vs
  ``csft_data.read`` (→ polars DataFrame).
- JSON array: ``json.load`` + ``polars.DataFrame`` vs ``csft_data.read``.
- JSONL: ``polars.read_ndjson`` (UTF-8 only, no line-located errors) vs ``csft_data.read`` and
  ``csft_data.read_batches`` (iterated to the end); ``pyarrow.json.read_json`` vs
  ``csft_data.read_arrow``.
- normalize (the main job of ``csft-data normalize``): GBK CSV → OpenCC t2s + clean-up → UTF-8
  JSONL, Python ``csv`` + ``opencc`` + ``json`` vs ``csft_data.normalize_file``.
Prints MB/s, records/s, the ratio and the peak RSS of each measurement (each runs in a fresh
subprocess so peak memory is its own; best of 3). polars, pyarrow and csft_data are imported
before the clock starts in every case, so no side pays for an import.

Run: ``python benches/bench_read.py [--copies N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

PEERS = {
    "csv_python": """
import csv, io
with open(PATH, encoding="gbk", newline="") as f:
    rows = list(csv.DictReader(f))
df = pl.DataFrame(rows)
N = df.height
""",
    "json_python": """
import json
with open(PATH, encoding="utf-8") as f:
    data = json.load(f)
df = pl.DataFrame(data, infer_schema_length=None)
N = df.height
""",
    "jsonl_polars": """
N = pl.read_ndjson(PATH, infer_schema_length=None).height
""",
    "jsonl_pyarrow": """
import pyarrow.json
N = pyarrow.json.read_json(PATH).num_rows
""",
    "csft_data": """
N = csft_data.read(PATH).height
""",
    "csft_batches": """
N = sum(df.height for df in csft_data.read_batches(PATH))
""",
    "csft_arrow": """
N = csft_data.read_arrow(PATH).num_rows
""",
    # the main job of `csft-data normalize`: GBK CSV -> t2s + clean-up -> UTF-8 JSONL
    "normalize_python": """
import csv, json, opencc
conv = opencc.OpenCC("t2s")
N = 0
with open(PATH, encoding="gbk", newline="") as f, open(PATH + ".out", "w", encoding="utf-8") as out:
    for row in csv.DictReader(f):
        row = {k: conv.convert(v.replace("\\r\\n", "\\n").strip()) for k, v in row.items()}
        out.write(json.dumps(row, ensure_ascii=False) + "\\n")
        N += 1
""",
    "normalize_csft": """
import csft_data
N = csft_data.normalize_file(PATH, PATH + ".out", convert="t2s").written
""",
}


def run_one(code: str, path: Path) -> tuple[float, int, float]:
    script = f"""
import resource, time, json
import polars as pl, pyarrow, csft_data
PATH = {str(path)!r}
t = time.perf_counter()
{code}
dt = time.perf_counter() - t
print(json.dumps([dt, N, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    dt, n, rss = json.loads(out.stdout.strip().splitlines()[-1])
    return float(dt), int(n), float(rss)


def replicate(src: Path, dst: Path, copies: int, kind: str) -> None:
    raw = src.read_bytes()
    if kind == "csv":
        header, _, body = raw.partition(b"\n")
        dst.write_bytes(header + b"\n" + body * copies)
    elif kind == "json":
        items = json.loads(raw)
        dst.write_text(json.dumps(items * copies, ensure_ascii=False), encoding="utf-8")
    else:
        dst.write_bytes(raw * copies)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=10)
    args = ap.parse_args()
    cases = [
        (
            "GBK CSV (Toyhom)",
            SHARED / "toyhom_cmdd/样例_内科5000-6000.csv",
            "csv",
            [("csv_python", "csft_data")],
        ),
        (
            "JSON array (Huatuo-26M)",
            SHARED / "huatuo26m/huatuo26M_test.json",
            "json",
            [("json_python", "csft_data")],
        ),
        (
            "JSONL (DISC-Med-SFT)",
            SHARED / "disc_med_sft/test_examples.jsonl",
            "jsonl",
            [
                ("jsonl_polars", "csft_data"),
                ("jsonl_polars", "csft_batches"),
                ("jsonl_pyarrow", "csft_arrow"),
            ],
        ),
        (
            "normalize GBK CSV to t2s JSONL (Toyhom)",
            SHARED / "toyhom_cmdd/样例_内科5000-6000.csv",
            "csv",
            [("normalize_python", "normalize_csft")],
        ),
    ]
    print(f"machine: {resource.getpagesize()}-byte pages; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for title, src, kind, pairs in cases:
            copies = args.copies * (20 if kind == "jsonl" else 1)
            path = Path(tmp) / f"{pairs[0][0]}.{kind}"
            replicate(src, path, copies, kind)
            mb = path.stat().st_size / 1e6
            print(f"\n{title}: {mb:.1f} MB ({copies} copies)")
            results: dict[str, tuple[float, int, float]] = {}
            for name in dict.fromkeys(name for pair in pairs for name in pair):
                best = min((run_one(PEERS[name], path) for _ in range(3)), key=lambda r: r[0])
                results[name] = best
                dt, n, rss = best
                print(
                    f"  {name:<13} {dt:7.3f} s  {mb / dt:8.1f} MB/s  {n / dt:12,.0f} records/s"
                    f"  peak RSS {rss:7.0f} MB"
                )
            for peer, ours in pairs:
                ratio = results[peer][0] / results[ours][0]
                print(f"  {ours} is {ratio:.2f}x the speed of {peer}")
            time.sleep(0.1)


if __name__ == "__main__":
    main()
