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

from csft_data.cli.common import EXIT_OK, add_recipe_run_options, stage_printer


def cmd_pretrain(args: argparse.Namespace) -> int:
    from csft_data.pretrain import STAGES, build_pretrain, load_pretrain_recipe

    recipe = load_pretrain_recipe(args.recipe, args.output)
    if args.dry_run:
        names = ", ".join(f"{s.name} ({s.category}, {s.format})" for s in recipe.sources)
        print(f"sources: {names}")
        print("stages: " + " → ".join(STAGES) + f" → write into {recipe.out_dir}")
        return EXIT_OK
    started = time.perf_counter()
    on_stage = stage_printer(args, STAGES)

    def on_notice(text: str) -> None:
        print(f"csft-data: {text}", file=sys.stderr, flush=True)

    result = build_pretrain(recipe, on_stage=on_stage, on_notice=on_notice)
    if args.output_format == "json":
        print(json.dumps(result.manifest, ensure_ascii=False))
    else:
        print("\n".join(result.lines()))
        print(f"built in {time.perf_counter() - started:.1f}s: {result.out_dir / 'manifest.json'}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Adds ``pretrain`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "pretrain",
        help='pretraining recipe (TOML, kind = "pretrain") → packed token shards + manifest',
    )
    p.add_argument("recipe", type=Path, help="the recipe file (see README: Continued pre-training)")
    add_recipe_run_options(p)
    p.set_defaults(func=cmd_pretrain)
