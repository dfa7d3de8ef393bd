"""``dedup --engine ray`` against the local engine on one node, in one run.

The corpus is ``bench_dedup.py``'s (real texts, planted near and exact copies, the same seed),
split into ``--shards`` JSONL files (the Ray engine's unit of work is the input file). Each
engine runs in a fresh subprocess, cross-source scope, threshold 0.8, verified:

- ``local``: ``dedup_files(...)`` in the process (rayon over all cores);
- ``ray``: ``ray.init(num_cpus=cores)`` in the child (timed apart), then ``dedup_files(...,
  engine="ray")``: one sketch task per shard with one core each, sketches written to a folder,
  the buckets' linking as link tasks, the rest on the driver.

Printed per engine: seconds, records/s, the ratio to local, the driver's peak RSS (VmHWM; Ray's
workers are other processes, their peak is printed too where /proc allows), and for Ray the
sketch pass's seconds and bytes per record (what crosses from workers to the driver: the
analogue of a shuffle's volume), the link jobs' seconds, and the driver's own part. Both
engines' outputs (kept records and clusters) are hashed: they must be equal. The last lines
estimate 100M and 1B records on N nodes from these figures (see ``benches/README.md`` for the
model and its limits).

Run: ``python benches/bench_ray.py`` (200k records, 8 shards, about a minute on 2 cores);
``--records 1000000 --shards 16``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import child_result, machine_line
from _harness import run_child as harness_run_child
from bench_dedup import NGRAM, NUM_PERM, SEED, THRESHOLD, build_corpus, load_base_texts


def worker_peak_mb(pids: list[int]) -> float:
    """The largest VmHWM among the given processes (0 when /proc is missing)."""
    peak = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    import csft_data

    init_seconds = 0.0
    pids: list[int] = []
    if cfg["engine"] == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=cfg["cores"], include_dashboard=False, log_to_driver=False)
        init_seconds = time.perf_counter() - t
    t = time.perf_counter()
    stats = csft_data.dedup_files(
        cfg["inputs"],
        cfg["output"],
        clusters=cfg["clusters"],
        fields=["text"],
        threshold=THRESHOLD,
        num_perm=NUM_PERM,
        ngram=NGRAM,
        seed=SEED,
        scope="cross-source",
        engine=cfg["engine"],
        tmp_dir=cfg["tmp_dir"],
    )
    seconds = time.perf_counter() - t
    if cfg["engine"] == "ray":
        import ray

        @ray.remote(num_cpus=1)
        def pid() -> int:
            return os.getpid()

        pids = sorted(set(ray.get([pid.remote() for _ in range(4 * cfg["cores"])])))
        stats["worker_rss_mb"] = worker_peak_mb(pids)
        ray.shutdown()
    return {
        "seconds": seconds,
        "init_seconds": init_seconds,
        "kept": sum(s["kept"] for s in stats["sources"]),
        "ray": stats.get("ray"),
        "worker_rss_mb": stats.get("worker_rss_mb", 0.0),
    }


def sha256_of(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--workdir", help="where the corpus and outputs go (default: a temp dir)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_result(child(json.loads(args.child)))
        return
    print(machine_line())
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        texts, _ = build_corpus(args.records, load_base_texts(), args.seed)
        per = -(-len(texts) // args.shards)
        inputs = []
        for k in range(args.shards):
            path = work / f"shard-{k:03d}.jsonl"
            with path.open("w", encoding="utf-8") as f:
                for i in range(k * per, min(len(texts), (k + 1) * per)):
                    f.write(json.dumps({"id": i, "text": texts[i]}, ensure_ascii=False) + "\n")
            inputs.append(str(path))
        size_mb = sum(Path(p).stat().st_size for p in inputs) / 1e6
        n = len(texts)
        del texts
        print(f"{n:,} records in {args.shards} JSONL shards, {size_mb:.0f} MB; {cores} cores")
        print(
            f"{'engine':>7} {'seconds':>8} {'records/s':>10} {'vs local':>9} {'driver RSS':>11} "
            f"{'worker RSS':>11} {'output sha256':>17}"
        )
        results: dict[str, dict[str, Any]] = {}
        for engine in ("local", "ray"):
            out, clusters = work / f"{engine}.jsonl", work / f"{engine}.clusters.jsonl"
            cfg = {
                "method": engine,
                "engine": engine,
                "inputs": inputs,
                "output": str(out),
                "clusters": str(clusters),
                "tmp_dir": str(work),
                "cores": cores,
            }
            res = harness_run_child(__file__, cfg)
            res["sha"] = sha256_of(out, clusters)
            results[engine] = res
            ratio = results["local"]["seconds"] / res["seconds"]
            worker = f"{res['worker_rss_mb']:>8.0f} MB" if res["worker_rss_mb"] else f"{'-':>11}"
            print(
                f"{engine:>7} {res['seconds']:>8.2f} {n / res['seconds']:>10,.0f} "
                f"{ratio:>8.2f}× {res['rss_mb']:>8.0f} MB {worker} {res['sha']:>17}",
                flush=True,
            )
        r = results["ray"]
        sk = r["ray"]
        per_record = sk["sketch_bytes"] / n
        driver_seconds = r["seconds"] - sk["sketch_seconds"] - sk["link_seconds"]
        print(
            f"ray: init {r['init_seconds']:.1f} s (not counted above); sketch pass "
            f"{sk['sketch_seconds']:.2f} s over {sk['tasks']} tasks, "
            f"{sk['sketch_bytes'] / 1e6:.0f} MB of sketches = {per_record:.0f} bytes/record; "
            f"link jobs {sk['link_seconds']:.2f} s over {sk['link_jobs']} tasks; "
            f"the driver's own part {driver_seconds:.2f} s"
        )
        same = r["sha"] == results["local"]["sha"]
        print(f"same bytes from both engines: {'yes' if same else 'NO'}")
        # The model: sketching and linking scale with cores; the driver's own part does not
        # (yet). Linear in records: the 10M figures of bench_dedup show linking growing faster.
        sketch_core_rate = n / (sk["sketch_seconds"] * cores)
        link_core_rate = n / (max(sk["link_seconds"], 1e-3) * cores)
        driver_rate = n / driver_seconds
        for total in (100_000_000, 1_000_000_000):
            for nodes, node_cores in ((8, 32), (32, 32)):
                sketch = total / (sketch_core_rate * nodes * node_cores)
                link = total / (link_core_rate * nodes * node_cores)
                driver = total / driver_rate
                print(
                    f"estimate {total / 1e6:,.0f}M records on {nodes}×{node_cores} cores: sketch "
                    f"{sketch / 60:.1f} min + link {link / 60:.1f} min + driver "
                    f"{driver / 60:.1f} min ({total * per_record / 1e9:,.0f} GB of sketches)"
                )
        if not same:
            sys.exit("the engines disagree")


if __name__ == "__main__":
    main()
