"""OpenCC conversion throughput: ``csft_data.convert`` vs the ``opencc`` Python package (C++).

The texts are every string of the Chinese corpora in ``../shared/data`` (Toyhom GBK CSV/TXT,
Huatuo-26M, CMtMedQA, DISC-Med-SFT, CMExam, MedDialog-COVID Chinese), replicated ``--copies``
times. For each config (t2s, s2t, s2twp) it times, each in a fresh subprocess so that the peak
RSS is its own:

- ``opencc``: ``opencc.OpenCC(cfg).convert(t)`` for each text (the package has no batch API);
- ``csft_data``: one ``csft_data.convert(texts, cfg)`` call on the whole list (parallel over the
  machine's cores);
- ``csft_data 1T``: the same with ``RAYON_NUM_THREADS=1``, i.e. single-threaded.

It prints MB/s (UTF-8 input bytes), the time, the peak RSS and the RSS after loading the texts,
and the speed ratio over ``opencc``. Converter construction is timed separately ("init").

Run: ``python benches/bench_convert.py [--copies N] [--configs t2s,s2t,s2twp]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

SOURCES = [
    ("toyhom_cmdd/样例_内科5000-6000.csv", "gbk"),
    ("toyhom_cmdd/内科.txt", "gbk"),
    ("huatuo26m/huatuo26M_test.json", "utf-8"),
    ("cmtmedqa/CMtMedQA_test.json", "utf-8"),
    ("disc_med_sft/test_examples.jsonl", "utf-8"),
    ("cmexam/cmexam_val_part1.csv", "utf-8"),
    ("meddialog_covid/COVID-Dialogue-Dataset-Chinese.txt", "utf-8"),
]

PEERS = {
    "opencc": """
import opencc
t = time.perf_counter()
cc = opencc.OpenCC(CFG)
init = time.perf_counter() - t
t = time.perf_counter()
out = [cc.convert(x) for x in TEXTS]
""",
    "csft_data": """
import csft_data
t = time.perf_counter()
csft_data.convert("", CFG)
init = time.perf_counter() - t
t = time.perf_counter()
out = csft_data.convert(TEXTS, CFG)
""",
}


def _strings(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def load_texts() -> list[str]:
    texts: list[str] = []
    for rel, encoding in SOURCES:
        path = SHARED / rel
        text = path.read_bytes().decode(encoding)
        if path.suffix == ".json":
            _strings(json.loads(text), texts)
        elif path.suffix == ".jsonl":
            for line in text.splitlines():
                if line.strip():
                    _strings(json.loads(line), texts)
        elif path.suffix == ".csv":
            for row in csv.reader(io.StringIO(text, newline="")):
                texts.extend(row)
        else:
            texts.extend(text.split("\n"))
    return [t for t in texts if t]


def run_one(peer: str, config: str, data: Path, threads: int | None) -> dict[str, float]:
    script = f"""
import json, resource, time
with open({str(data)!r}, encoding="utf-8") as f:
    TEXTS = json.load(f)
CFG = {config!r}
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
{PEERS[peer]}
dt = time.perf_counter() - t
assert len(out) == len(TEXTS)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(dt=dt, init=init, rss=rss, base_rss=base_rss)))
"""
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(threads)
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--configs", default="t2s,s2t,s2twp")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    args = ap.parse_args()

    texts = load_texts() * args.copies
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{len(texts):,} texts, {mb:.1f} MB UTF-8 ({args.copies} copies of shared/data)")
    runs = [("opencc", None), ("csft_data", None), ("csft_data 1T", 1)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "texts.json"
        data.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        for config in args.configs.split(","):
            print(f"\n{config}:")
            times = {}
            for label, threads in runs:
                peer = label.split()[0]
                results = [run_one(peer, config, data, threads) for _ in range(args.repeat)]
                best = min(results, key=lambda r: r["dt"])
                times[label] = best["dt"]
                print(
                    f"  {label:<13} {mb / best['dt']:8.1f} MB/s"
                    f" {len(texts) / best['dt']:10,.0f} texts/s  {best['dt']:7.3f} s"
                    f"  init {best['init'] * 1e3:6.1f} ms  peak RSS {best['rss']:6.0f} MB"
                    f" (texts loaded: {best['base_rss']:.0f} MB)"
                )
            for label in ("csft_data", "csft_data 1T"):
                print(f"  {label} is {times['opencc'] / times[label]:.2f}x the speed of opencc")


if __name__ == "__main__":
    main()
