"""``csft-data pretrain RECIPE -o DIR``: a pretraining recipe (``kind = "pretrain"``) →
packed token shards for continued pre-training (:mod:`csft_data.pretrain`); ``csft-data build``
hands such recipes here too. ``--dry-run`` prints the stages and runs nothing."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK = 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from csft_data.pretrain import STAGES, build_pretrain, load_pretrain_recipe

    recipe = load_pretrain_recipe(args.recipe, args.output)
    if args.dry_run:
        names = ", ".join(f"{s.name} ({s.category}, {s.format})" for s in recipe.sources)
        print(f"sources: {names}")
        print("stages: " + " → ".join(STAGES) + f" → write into {recipe.out_dir}")
        return EXIT_OK
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    started = time.perf_counter()

    def on_stage(name: str, cached: bool) -> None:
        if show:
            step = STAGES.index(name) + 1 if name in STAGES else len(STAGES) + 1
            tag = " (cached)" if cached else ""
            print(f"[{step}/{len(STAGES) + 1}] {name}{tag}", file=sys.stderr, flush=True)

    def on_notice(text: str) -> None:
        print(f"csft-data: {text}", file=sys.stderr, flush=True)

    result = build_pretrain(recipe, on_stage=on_stage, on_notice=on_notice)
    if args.output_format == "json":
        print(json.dumps(result.manifest, ensure_ascii=False))
    else:
        print("\n".join(result.lines()))
        print(f"built in {time.perf_counter() - started:.1f}s: {result.out_dir / 'manifest.json'}")
    return EXIT_OK


def add_pretrain_arguments(p: Any) -> None:
    p.add_argument("-o", "--output", type=Path, help="output folder (default: [output] dir)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one line per stage on stderr (default: when stderr is a terminal)",
    )
    p.add_argument("--output-format", choices=["text", "json"], default="text")


def add_pretrain_parser(sub: Any) -> None:
    """Adds ``pretrain`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "pretrain",
        help='pretraining recipe (TOML, kind = "pretrain") → packed token shards + manifest',
    )
    p.add_argument("recipe", type=Path, help="the recipe file (see README: Continued pre-training)")
    add_pretrain_arguments(p)
    p.set_defaults(func=cmd_pretrain)
