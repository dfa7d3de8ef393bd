"""``csft-data normalize INPUT -o OUTPUT``: one record file (JSONL/JSON/CSV/Parquet, gz/zst,
UTF-8/GBK) streamed to normalized JSONL; ``csft-data demo``: the main job on the embedded demo
corpus. Both take the normalization options defined here."""

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
    csv_list,
    inputs,
    show_progress,
)
from csft_data.demo import run_demo
from csft_data.normalize import NormalizeSummary, normalize_file
from csft_data.write import quarantine_arg


def add_normalize_options(p: argparse.ArgumentParser) -> None:
    """The ``normalization`` and ``reading`` groups, ``--progress`` and ``--output-format``."""
    g = p.add_argument_group("normalization")
    g.add_argument("--convert", metavar="CONFIG", help="OpenCC config, e.g. t2s, s2t, tw2sp")
    g.add_argument(
        "--fields",
        type=csv_list,
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
        type=csv_list,
        metavar="A,B",
        help="apply --unicode only to these fields",
    )
    g.add_argument("--no-newlines", action="store_true", help="keep \\r\\n and \\r as they are")
    g.add_argument("--no-control", action="store_true", help="keep control characters")
    g.add_argument("--no-whitespace", action="store_true", help="keep whitespace as it is")
    add_reading_options(
        p,
        encoding_help="auto (default), utf-8 or gbk",
        on_error_help="on a bad record: stop (default) or quarantine it and go on",
        quarantine_help="where skipped records go",
    )
    add_progress_option(p, help="progress bar (default: when stderr is a terminal)")
    add_output_format_option(p)


def normalize_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_normalize_options` as keyword arguments of the normalizer."""
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
        "progress": show_progress(args),
    }


def _report(summaries: list[NormalizeSummary], output_format: str) -> int:
    if output_format == "json":
        payload = [s.as_dict() for s in summaries]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False))
    else:
        for s in summaries:
            print(s.line())
    return EXIT_FINDINGS if any(s.rejected for s in summaries) else EXIT_OK


def normalize_io(args: argparse.Namespace) -> Files:
    """The files ``normalize`` reads and writes."""
    outputs = [
        ("-o/--output", args.output),
        quarantine_arg(args.quarantine, args.on_error, args.output),
    ]
    return inputs([args.input]), outputs, []


def cmd_normalize(args: argparse.Namespace) -> int:
    summary = normalize_file(args.input, args.output, **normalize_kwargs(args))
    return _report([summary], args.output_format)


def demo_io(args: argparse.Namespace) -> Files:
    """The files ``demo`` writes: its quarantine and the folders of its stages."""
    out: Path = args.output
    return [], [("--quarantine", args.quarantine)], [out, out / "adapted", out / "normalized"]


def cmd_demo(args: argparse.Namespace) -> int:
    out_dir: Path = args.output
    result = run_demo(out_dir, **normalize_kwargs(args))
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


def register(sub: Any) -> None:
    """Adds ``normalize`` and ``demo`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "normalize",
        help="stream a JSONL/JSON/CSV/Parquet file (gz/zst, UTF-8/GBK) to normalized JSONL",
    )
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help=OUTPUT_HELP)
    add_normalize_options(p)
    p.set_defaults(func=cmd_normalize, files=normalize_io)

    p = sub.add_parser("demo", help="run the main job on the embedded demo corpus")
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")
    add_normalize_options(p)
    p.set_defaults(func=cmd_demo, files=demo_io, convert="t2s")
