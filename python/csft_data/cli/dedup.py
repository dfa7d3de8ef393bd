"""``csft-data dedup INPUT... -o OUTPUT``: exact and MinHash-LSH near-duplicate removal, per
source then across sources (:func:`csft_data.dedup.dedup_files`), with a table of what each
source kept."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from csft_data.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    OUTPUT_HELP,
    Files,
    add_output_format_option,
    add_progress_option,
    add_reading_options,
    add_threads_option,
    csv_list,
    inputs,
    show_progress,
)
from csft_data.dedup import dedup_files
from csft_data.write import quarantine_arg, write_text_atomic


def _dedup_table(stats: dict[str, Any]) -> str:
    head = ("source", "records", "kept", "exact", "near", "cross-src", "rejected")
    rows = [
        (
            s["source"],
            s["records"],
            s["kept"],
            s["exact_duplicates"],
            s["near_duplicates"],
            s["cross_source"],
            s["rejected"],
        )
        for s in stats["sources"]
    ]
    total = ("total", *(sum(int(r[i]) for r in rows) for i in range(1, len(head))))
    width = max(len(str(r[0])) for r in [head, *rows, total])
    lines = []
    for r in [head, *rows, total]:
        cells = [f"{c:,}" if isinstance(c, int) else str(c) for c in r[1:]]
        lines.append(f"{r[0]!s:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


def dedup_io(args: argparse.Namespace) -> Files:
    """The files ``dedup`` reads and writes (and ``--tmp-dir``, which it writes into)."""
    outputs = [
        ("-o/--output", args.output),
        ("--clusters", args.clusters),
        ("--stats", args.stats),
        quarantine_arg(args.quarantine, args.on_error, args.output),
    ]
    return inputs(args.inputs), outputs, [args.tmp_dir] if args.tmp_dir else []


def cmd_dedup(args: argparse.Namespace) -> int:
    stats = dedup_files(
        args.inputs,
        args.output,
        clusters=args.clusters,
        quarantine=args.quarantine,
        fields=args.fields,
        scope=args.scope,
        threshold=args.threshold,
        num_perm=args.num_perm,
        ngram=args.ngram,
        word_ngram=args.word_ngram,
        mode=args.shingles,
        seed=args.seed,
        sketch=args.sketch,
        bands=args.bands,
        rows=args.rows,
        verify=args.verify,
        keep=args.keep,
        priority=args.priority,
        format=args.format,
        encoding=args.encoding,
        on_error=args.on_error,
        batch_size=args.batch_size,
        progress=show_progress(args),
        num_threads=args.threads,
        memory_limit=args.memory_limit,
        tmp_dir=args.tmp_dir,
        engine=args.engine,
        ray_address=args.ray_address,
        ray_cpus_per_task=args.ray_cpus_per_task,
    )
    if args.stats is not None:
        write_text_atomic(args.stats, json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
    if args.output_format == "json":
        print(json.dumps(stats, ensure_ascii=False))
    else:
        print(_dedup_table(stats))
        scope = stats["cross_source_scope"]["bands"] and stats["cross_source_scope"]
        lsh = scope or stats["per_source_scope"]
        print(
            f"{stats['clusters']:,} duplicate clusters; LSH {lsh['bands']}×{lsh['rows']} "
            f"(bands×rows) at threshold {args.threshold}; {stats['seconds']:.2f}s → {args.output}"
        )
        if stats["out_of_core"]:
            print(f"out of core: {stats['spilled_bytes'] / 1e6:,.0f} MB of temporary files")
    rejected = sum(int(s["rejected"]) for s in stats["sources"])
    return EXIT_FINDINGS if rejected else EXIT_OK


def register(sub: Any) -> None:
    """Adds ``dedup`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "dedup",
        help="exact + MinHash-LSH near-duplicate removal, per source then across sources",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="input files; each one is a source")
    p.add_argument("-o", "--output", type=Path, required=True, help="kept records; " + OUTPUT_HELP)
    p.add_argument("--clusters", type=Path, help="write duplicate clusters (JSONL) here")
    p.add_argument("--stats", type=Path, help="write the stats (JSON) here")
    p.add_argument(
        "--fields",
        type=csv_list,
        metavar="A,B",
        help="fields that make the dedup text (required); default: all",
    )
    p.add_argument("--scope", choices=["per-source", "cross-source", "both"], default="both")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard threshold (0.8)")
    p.add_argument("--num-perm", type=int, default=128)
    p.add_argument("--ngram", type=int, default=5, help="character n-gram size (5)")
    p.add_argument("--word-ngram", type=int, default=3, help="word n-gram size (3)")
    p.add_argument("--shingles", choices=["auto", "char", "word"], default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--sketch",
        choices=["minhash", "oph"],
        default="oph",
        help="signatures: oph (default; one-permutation hashing with optimal densification) or "
        "minhash (num-perm permutations; better estimates for very short texts with --no-verify)",
    )
    p.add_argument(
        "--bands",
        type=int,
        help="override the LSH bands (default: verified runs band for recall, 99.5%% of the "
        "pairs at the threshold made candidates: 18x6 at 0.8; --no-verify: 14x9 at 0.8)",
    )
    p.add_argument("--rows", type=int, help="override the LSH rows per band")
    p.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check candidates by true Jaccard (default on: no false positives); "
        "--no-verify checks the MinHash estimate instead",
    )
    p.add_argument(
        "--keep",
        choices=["first", "longest", "priority"],
        default="first",
        help="keeper of each cluster: first seen, longest, or by source --priority",
    )
    p.add_argument(
        "--priority",
        type=csv_list,
        metavar="SRC,SRC",
        help="with --keep priority: source names (file stems), most preferred first",
    )
    add_reading_options(p)
    m = p.add_argument_group("memory")
    m.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="e.g. 2GB: past it (estimated from the input size) the run goes out of core, "
        "same result; 0 = always; default half the available memory",
    )
    m.add_argument(
        "--tmp-dir",
        type=Path,
        help="temporary files of an out-of-core run, and the sketches of --engine ray "
        "(a folder every node sees; default: the output's folder)",
    )
    e = p.add_argument_group("engine")
    e.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: each input file's first pass runs as a Ray task (pip install "
        "'csft-data[ray]'); same output as local",
    )
    e.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="auto (this machine's cluster) or ray://host:port; default: a local Ray",
    )
    e.add_argument("--ray-cpus-per-task", type=int, default=1, metavar="N")
    add_threads_option(p)
    add_progress_option(p)
    add_output_format_option(p)
    p.set_defaults(func=cmd_dedup, files=dedup_io)
