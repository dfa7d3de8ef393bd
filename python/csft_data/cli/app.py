"""The ``csft-data`` command line: one program, one subcommand per job.

Exit codes (as ruff): 0 done and clean; 1 done, but records were rejected (see the quarantine
file); 2 error (bad input in raise mode, bad option, missing file) — nothing was written.

Before a command that writes runs, :func:`main` checks its files (see :data:`WRITES`): an
output that is one of its inputs (or another output) is refused, and temporary files that
killed runs left in the output folders are removed (:func:`csft_data.write.prepare_outputs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from csft_data import __version__
from csft_data._core import ConfigError, CsftDataError, convert, opencc_configs
from csft_data.adapters import adapter_names, adapters
from csft_data.adapters import convert as adapt
from csft_data.cli.build import add_build_parser
from csft_data.cli.decontam import add_decontaminate_parser, cmd_decontaminate, decontaminate_io
from csft_data.cli.diversify import add_diversify_parser, cmd_diversify, diversify_io
from csft_data.cli.eval import add_eval_parser, cmd_rouge, cmd_score
from csft_data.cli.pretrain import add_pretrain_parser
from csft_data.cli.train import add_train_parser
from csft_data.dedup import dedup_files
from csft_data.demo import run_demo
from csft_data.lengths import DEFAULT_CUTOFFS, summaries, template_names, token_lengths
from csft_data.normalize import NormalizeSummary, normalize_file
from csft_data.write import PathArg, prepare_outputs, quarantine_arg, write_text_atomic

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
OUTPUT_HELP = "format by name: .jsonl (.gz/.zst ok; the default), .json, .csv or .parquet"


def _csv_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return items


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads to use (default: one per core); the result does not depend on it",
    )


def _add_normalize_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("normalization")
    g.add_argument("--convert", metavar="CONFIG", help="OpenCC config, e.g. t2s, s2t, tw2sp")
    g.add_argument(
        "--fields",
        type=_csv_list,
        metavar="A,B",
        help="only these top-level fields (and require them); default: all",
    )
    g.add_argument(
        "--unicode",
        choices=["none", "nfc", "nfkc", "width"],
        default="none",
        help="Unicode folding (nfkc/width turn full-width ，？ into ASCII); default none",
    )
    g.add_argument(
        "--unicode-fields",
        type=_csv_list,
        metavar="A,B",
        help="apply --unicode only to these fields",
    )
    g.add_argument("--no-newlines", action="store_true", help="keep \\r\\n and \\r as they are")
    g.add_argument("--no-control", action="store_true", help="keep control characters")
    g.add_argument("--no-whitespace", action="store_true", help="keep whitespace as it is")
    r = p.add_argument_group("reading")
    r.add_argument("--format", choices=["jsonl", "json", "csv", "parquet"])
    r.add_argument("--encoding", default="auto", help="auto (default), utf-8 or gbk")
    r.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="on a bad record: stop (default) or quarantine it and go on",
    )
    r.add_argument("--quarantine", type=Path, help="where skipped records go")
    r.add_argument("--batch-size", type=int, default=4096)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    p.add_argument("--output-format", choices=["text", "json"], default="text")


def _normalize_kwargs(args: argparse.Namespace) -> dict[str, object]:
    return {
        "convert": args.convert,
        "fields": args.fields,
        "unicode": args.unicode,
        "unicode_fields": args.unicode_fields,
        "newlines": not args.no_newlines,
        "control": not args.no_control,
        "whitespace": not args.no_whitespace,
        "format": args.format,
        "encoding": args.encoding,
        "on_error": args.on_error,
        "quarantine": args.quarantine,
        "batch_size": args.batch_size,
        "progress": sys.stderr.isatty() if args.progress is None else args.progress,
    }


def _report(summaries: list[NormalizeSummary], output_format: str) -> int:
    if output_format == "json":
        payload = [s.as_dict() for s in summaries]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False))
    else:
        for s in summaries:
            print(s.line())
    return EXIT_FINDINGS if any(s.rejected for s in summaries) else EXIT_OK


def cmd_normalize(args: argparse.Namespace) -> int:
    summary = normalize_file(args.input, args.output, **_normalize_kwargs(args))  # type: ignore[arg-type]
    return _report([summary], args.output_format)


def cmd_demo(args: argparse.Namespace) -> int:
    out_dir: Path = args.output
    result = run_demo(out_dir, **_normalize_kwargs(args))
    if args.output_format == "json":
        payload = {
            "adapted": result.adapted,
            "normalized": [s.as_dict() for s in result.normalized],
            "dedup": result.dedup,
        }
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print("\n".join(result.lines()))
        print(f"demo: kept records in {result.kept}; stages under {out_dir}/")
    rejected = any(s.rejected for s in result.normalized)
    return EXIT_FINDINGS if rejected else EXIT_OK


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
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
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


def _cutoff_list(value: str) -> list[int]:
    try:
        cuts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated token counts") from None
    if not cuts or min(cuts) <= 0:
        raise argparse.ArgumentTypeError("expected positive token counts, e.g. 512,1024,2048")
    return sorted(set(cuts))


def _lengths_table(stats: dict[str, Any]) -> str:
    rows = summaries(stats)
    head = ["source", "records", "mean", "p50", "p90", "p99", "max"]
    for c in stats["cutoffs"]:
        head += [f"trunc@{c}", f"resp@{c}"]
    body: list[list[str]] = []
    for r in rows:
        cells = [r.source, f"{r.records:,}", f"{r.mean:,.1f}"]
        cells += [f"{v:,}" for v in (r.p50, r.p90, r.p99, r.max)]
        for c in r.cutoffs:
            cells += [f"{100 * c.truncated_share:.1f}%", f"{100 * c.response_cut_share:.1f}%"]
        body.append(cells)
    width = max(len(row[0]) for row in [head, *body])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(1, len(head))]
    lines = []
    for row in [head, *body]:
        joined = "  ".join(f"{c:>{w}}" for c, w in zip(row[1:], widths, strict=True))
        lines.append(f"{row[0]:<{width}}  {joined}")
    return "\n".join(lines)


def cmd_lengths(args: argparse.Namespace) -> int:
    stats = token_lengths(
        args.inputs,
        args.tokenizer,
        template=args.template,
        cutoffs=args.cutoffs,
        system=args.system,
        bos_token=args.bos_token,
        eos_token=args.eos_token,
        buckets=args.buckets,
        quarantine=args.quarantine,
        format=args.format,
        encoding=args.encoding,
        on_error=args.on_error,
        batch_size=args.batch_size,
        num_threads=args.threads,
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
    )
    if args.output_format == "json":
        print(json.dumps(stats, ensure_ascii=False))
    else:
        print(_lengths_table(stats))
        total = stats["total"]
        print(
            f"{total['counted']:,} records counted, {total['rejected']:,} rejected; "
            f"{total['total_tokens']:,} tokens ({stats['template']} template, "
            f"{Path(stats['tokenizer']).name}); trunc = truncated, resp = final response cut; "
            f"{stats['seconds']:.2f}s" + (f" → {stats['buckets']}" if stats["buckets"] else "")
        )
        for r in stats["rejections"][:5]:
            print(
                f"rejected: {r['file']} (record {r['record']}, field '{r['field']}'): "
                f"{r['reason']}",
                file=sys.stderr,
            )
    return EXIT_FINDINGS if stats["total"]["rejected"] else EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    table = adapters()
    if args.output_format == "json":
        print(json.dumps(table, ensure_ascii=False))
        return EXIT_OK
    width = max(len(a["name"]) for a in table)
    style_width = max(len(a["style"]) for a in table)
    for a in table:
        print(f"{a['name']:<{width}}  {a['style']:<{style_width}}  {a['description']}")
        if args.verbose:
            print(f"{'':<{width}}  {'':<{style_width}}  reads: {a['dataset']}")
            for name, text in a["templates"].items():
                print(f"{'':<{width}}  {'':<{style_width}}  template {name} = {text!r}")
    return EXIT_OK


def _unescape(text: str) -> str:
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in escapes:
            out.append(escapes[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _key_values(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{what} must be NAME=VALUE, got {item!r}")
        # a typed \n (or \t) in a template means a newline (tab); \\ is a backslash
        out[name] = _unescape(value) if what == "--template" else value
    return out


def cmd_adapt(args: argparse.Namespace) -> int:
    stats = adapt(
        args.adapter,
        args.inputs,
        args.output,
        templates=_key_values(args.template, "--template"),
        per_conversation=args.per_conversation,
        on_error=args.on_error,
        quarantine=args.quarantine,
        mapping=_key_values(args.map, "--map"),
    )
    if args.output_format == "json":
        print(json.dumps(stats, ensure_ascii=False))
    else:
        print(
            f"{stats['adapter']}: {stats['records']:,} in, {stats['converted']:,} converted "
            f"→ {stats['written']:,} records, {stats['skipped']:,} skipped, "
            f"{stats['rejected']:,} rejected; {stats['seconds']:.2f}s → {stats['output']}"
        )
        for reason, n in stats["skipped_by_reason"].items():
            print(f"  skipped {n:,}: {reason}")
        for reason, n in stats["rejected_by_reason"].items():
            print(f"  rejected {n:,}: {reason}")
        for r in stats["rejections"][:5]:
            where = f"{r['file']}" + (f":{r['line']}" if r["line"] is not None else "")
            field = f", field '{r['field']}'" if r["field"] else ""
            print(
                f"rejected: {where} (record {r['record']}{field}): {r['reason']}",
                file=sys.stderr,
            )
        if stats["rejected"] and stats["quarantine"]:
            print(f"  quarantine: {stats['quarantine']}")
    return EXIT_FINDINGS if stats["rejected"] else EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(opencc_configs()))
        return EXIT_OK
    if args.config is None:
        raise SystemExit("csft-data convert: a CONFIG is required (see --list)")
    texts = args.text if args.text else sys.stdin.read().splitlines()
    for line in convert(texts, args.config):
        print(line)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csft-data",
        description="Curate medical SFT corpora: read, normalize, deduplicate, build splits.",
    )
    parser.add_argument("--version", action="version", version=f"csft-data {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "normalize",
        help="stream a JSONL/JSON/CSV/Parquet file (gz/zst, UTF-8/GBK) to normalized JSONL",
    )
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help=OUTPUT_HELP)
    _add_normalize_options(p)
    p.set_defaults(func=cmd_normalize)

    p = sub.add_parser("demo", help="run the main job on the embedded demo corpus")
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")
    _add_normalize_options(p)
    p.set_defaults(func=cmd_demo, convert="t2s")

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
        type=_csv_list,
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
        type=_csv_list,
        metavar="SRC,SRC",
        help="with --keep priority: source names (file stems), most preferred first",
    )
    r = p.add_argument_group("reading")
    r.add_argument("--format", choices=["jsonl", "json", "csv", "parquet"])
    r.add_argument("--encoding", default="auto")
    r.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    r.add_argument("--quarantine", type=Path)
    r.add_argument("--batch-size", type=int, default=4096)
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
    _add_threads_option(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--output-format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_dedup)

    p = sub.add_parser(
        "lengths",
        help="token lengths per source under a tokenizer + chat template; truncation per cut-off",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="input files; each one is a source")
    p.add_argument(
        "--tokenizer", type=Path, required=True, help="a Hugging Face tokenizer.json file"
    )
    p.add_argument(
        "--template",
        choices=template_names(),
        default="intern2",
        help="LLaMA-Factory chat template (default intern2)",
    )
    p.add_argument(
        "--cutoffs",
        type=_cutoff_list,
        default=list(DEFAULT_CUTOFFS),
        metavar="N,N",
        help="cut-off lengths in tokens (default 512,1024,2048)",
    )
    p.add_argument("--system", help="replace the template's default system prompt ('' = none)")
    p.add_argument("--bos-token", help="BOS token name (default: the template's usual one)")
    p.add_argument("--eos-token", help="EOS token name (default: the template's usual one)")
    p.add_argument("--buckets", type=Path, help="write one bucket line per record (JSONL) here")
    r = p.add_argument_group("reading")
    r.add_argument("--format", choices=["jsonl", "json", "csv", "parquet"])
    r.add_argument("--encoding", default="auto")
    r.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    r.add_argument("--quarantine", type=Path, help="where rejected records go (JSONL)")
    r.add_argument("--batch-size", type=int, default=4096)
    _add_threads_option(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--output-format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_lengths)

    p = sub.add_parser("sources", help="list the source adapters (one per public dataset)")
    p.add_argument("-v", "--verbose", action="store_true", help="also the files read and templates")
    p.add_argument("--output-format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_sources)

    p = sub.add_parser(
        "adapt",
        help="convert a dataset, as its authors ship it, into Alpaca records (see `sources`)",
    )
    p.add_argument("adapter", choices=adapter_names(), metavar="ADAPTER")
    p.add_argument("inputs", nargs="+", type=Path, help="the dataset's files")
    p.add_argument("-o", "--output", type=Path, required=True, help="Alpaca JSONL (.gz/.zst ok)")
    p.add_argument(
        "--per-conversation",
        action="store_true",
        help="dialogues: one record per conversation (default: one per assistant turn)",
    )
    p.add_argument(
        "--template",
        action="append",
        metavar="NAME=TEXT",
        help="override a template (repeatable; \\n for newline); see `sources -v`",
    )
    p.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help="mapping adapter: output field (instruction/input/output/system/history/id) "
        "from an input field (repeatable)",
    )
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    p.add_argument("--quarantine", type=Path, help="where rejected units go (skip mode)")
    p.add_argument("--output-format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("convert", help="convert text between Chinese scripts (OpenCC configs)")
    p.add_argument("config", nargs="?", help="OpenCC config, e.g. t2s")
    p.add_argument("text", nargs="*", help="texts to convert (default: lines of stdin)")
    p.add_argument("--list", action="store_true", help="list the built-in configs")
    p.set_defaults(func=cmd_convert)
    add_build_parser(sub)
    add_pretrain_parser(sub)
    add_decontaminate_parser(sub)
    add_diversify_parser(sub)
    add_eval_parser(sub)
    add_train_parser(sub)
    return parser


#: What a command reads and writes: (inputs, outputs, other folders it writes into), each path
#: with its option's name for the error message.
Files = tuple[list[PathArg], list[PathArg], list[Path]]


def _inputs(paths: Sequence[Path | None], what: str = "the input") -> list[PathArg]:
    return [(what, p) for p in paths]


def _normalize_files(args: argparse.Namespace) -> Files:
    outputs = [
        ("-o/--output", args.output),
        quarantine_arg(args.quarantine, args.on_error, args.output),
    ]
    return _inputs([args.input]), outputs, []


def _demo_files(args: argparse.Namespace) -> Files:
    out: Path = args.output
    return [], [("--quarantine", args.quarantine)], [out, out / "adapted", out / "normalized"]


def _dedup_files(args: argparse.Namespace) -> Files:
    outputs = [
        ("-o/--output", args.output),
        ("--clusters", args.clusters),
        ("--stats", args.stats),
        quarantine_arg(args.quarantine, args.on_error, args.output),
    ]
    return _inputs(args.inputs), outputs, [args.tmp_dir] if args.tmp_dir else []


def _lengths_files(args: argparse.Namespace) -> Files:
    inputs = [*_inputs(args.inputs), ("the --tokenizer file", args.tokenizer)]
    return inputs, [("--buckets", args.buckets), ("--quarantine", args.quarantine)], []


def _adapt_files(args: argparse.Namespace) -> Files:
    outputs = [
        ("-o/--output", args.output),
        quarantine_arg(args.quarantine, args.on_error, args.output),
    ]
    return _inputs(args.inputs), outputs, []


def _score_files(args: argparse.Namespace) -> Files:
    inputs = [
        ("the --predictions file", args.predictions),
        ("the --answers file", args.answers),
        ("the --questions file", args.questions),
    ]
    return inputs, [("--json", args.json)], []


def _rouge_files(args: argparse.Namespace) -> Files:
    inputs = [
        ("the --predictions file", args.predictions),
        ("the --references file", args.references),
        ("the --against file", args.against),
    ]
    return inputs, [("--json", args.json), ("--per-item", args.per_item)], []


#: The files of every command that writes, by the function that runs it (``build`` checks its
#: recipe's files itself, under the lock of its output folder).
WRITES: dict[Callable[[argparse.Namespace], int], Callable[[argparse.Namespace], Files]] = {
    cmd_normalize: _normalize_files,
    cmd_demo: _demo_files,
    cmd_dedup: _dedup_files,
    cmd_lengths: _lengths_files,
    cmd_adapt: _adapt_files,
    cmd_decontaminate: decontaminate_io,
    cmd_diversify: diversify_io,
    cmd_score: _score_files,
    cmd_rouge: _rouge_files,
}


def _prepare(args: argparse.Namespace) -> None:
    files = WRITES.get(args.func)
    if files is None:
        return
    for path in prepare_outputs(*files(args)):
        print(f"csft-data: removed {path}, left by an interrupted run", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the command as given, for the launchers that run it again under torchrun (--nproc)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _prepare(args)
        code: int = args.func(args)
        return code
    except (CsftDataError, OSError) as e:
        print(f"csft-data: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("csft-data: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
