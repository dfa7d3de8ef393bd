"""``csft-data sources``: the source adapters, one per public dataset; ``csft-data adapt ADAPTER
INPUT... -o OUTPUT``: a dataset, as its authors ship it, converted into Alpaca records
(:func:`csft_data.adapters.convert`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.adapters import adapter_names, adapters, convert
from csft_data.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Files,
    add_on_error_options,
    add_output_format_option,
    inputs,
)
from csft_data.write import quarantine_arg


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


def adapt_io(args: argparse.Namespace) -> Files:
    """The files ``adapt`` reads and writes."""
    outputs = [
        ("-o/--output", args.output),
        quarantine_arg(args.quarantine, args.on_error, args.output),
    ]
    return inputs(args.inputs), outputs, []


def cmd_adapt(args: argparse.Namespace) -> int:
    stats = convert(
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


def register(sub: Any) -> None:
    """Adds ``sources`` and ``adapt`` to the top-level subparsers ``sub``."""
    p = sub.add_parser("sources", help="list the source adapters (one per public dataset)")
    p.add_argument("-v", "--verbose", action="store_true", help="also the files read and templates")
    add_output_format_option(p)
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
    add_on_error_options(p, quarantine_help="where rejected units go (skip mode)")
    add_output_format_option(p)
    p.set_defaults(func=cmd_adapt, files=adapt_io)
