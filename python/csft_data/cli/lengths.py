"""``csft-data lengths INPUT... --tokenizer FILE``: token lengths per source under a tokenizer and
a chat template (:func:`csft_data.lengths.token_lengths`), with the share truncated at each
cut-off."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from csft_data.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Files,
    add_output_format_option,
    add_progress_option,
    add_reading_options,
    add_threads_option,
    inputs,
    show_progress,
)
from csft_data.lengths import DEFAULT_CUTOFFS, summaries, template_names, token_lengths


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


def lengths_io(args: argparse.Namespace) -> Files:
    """The files ``lengths`` reads and writes."""
    read = [*inputs(args.inputs), ("the --tokenizer file", args.tokenizer)]
    return read, [("--buckets", args.buckets), ("--quarantine", args.quarantine)], []


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
        progress=show_progress(args),
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


def register(sub: Any) -> None:
    """Adds ``lengths`` to the top-level subparsers ``sub``."""
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
    add_reading_options(p, quarantine_help="where rejected records go (JSONL)")
    add_threads_option(p)
    add_progress_option(p)
    add_output_format_option(p)
    p.set_defaults(func=cmd_lengths, files=lengths_io)
