"""``csft-data decontaminate``: drop training records that contain evaluation items."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from csft_data.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Files,
    add_output_format_option,
    add_reading_options,
    inputs,
)
from csft_data.decontam import decontaminate
from csft_data.write import quarantine_arg


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def decontaminate_io(args: argparse.Namespace) -> Files:
    """The files ``decontaminate`` reads and writes."""
    read = [*inputs(args.inputs), *inputs(args.eval, "the --eval file")]
    quarantine = quarantine_arg(args.quarantine, args.on_error, args.output)
    outputs = [("-o/--output", args.output), ("--report", args.report), quarantine]
    return read, outputs, []


def cmd_decontaminate(args: argparse.Namespace) -> int:
    stats = decontaminate(
        args.inputs,
        args.output,
        args.eval,
        fields=args.fields,
        eval_fields=args.eval_fields,
        ngram=args.ngram,
        threshold=args.threshold,
        report=args.report,
        quarantine=args.quarantine,
        format=args.format,
        encoding=args.encoding,
        on_error=args.on_error,
    )
    if args.output_format == "json":
        print(json.dumps(stats, ensure_ascii=False))
    else:
        width = max(len(s["source"]) for s in stats["sources"])
        print(f"{'source':<{width}}  {'records':>9} {'kept':>9} {'removed':>9} {'rejected':>9}")
        for s in stats["sources"]:
            print(
                f"{s['source']:<{width}}  {s['records']:>9,} {s['kept']:>9,} "
                f"{s['removed']:>9,} {s['rejected']:>9,}"
            )
        print(
            f"{stats['eval_items']:,} evaluation items ({stats['eval_unchecked']:,} too short to "
            f"check); {stats['eval_items_hit']:,} found in the training data"
        )
    rejected = any(s["rejected"] for s in stats["sources"])
    return EXIT_FINDINGS if rejected else EXIT_OK


def register(sub: Any) -> None:
    """Adds ``decontaminate`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "decontaminate",
        help="drop training records that contain evaluation items (n-gram overlap)",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="training files; each one is a source")
    p.add_argument("-o", "--output", type=Path, required=True, help="kept records")
    p.add_argument(
        "--eval", type=Path, nargs="+", required=True, help="evaluation files (questions)"
    )
    p.add_argument("--eval-fields", type=_names, metavar="A,B", help="fields of an item's text")
    p.add_argument("--fields", type=_names, metavar="A,B", help="training fields to check")
    p.add_argument("--ngram", type=int, default=8, help="character n-gram size (default 8)")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="share of an item's n-grams a record must contain to be removed (default 0.5)",
    )
    p.add_argument("--report", type=Path, help="one line per removed record (JSONL)")
    add_reading_options(p, quarantine_help="where rejected records go (JSONL)", batch_size=False)
    add_output_format_option(p)
    p.set_defaults(func=cmd_decontaminate, files=decontaminate_io)
