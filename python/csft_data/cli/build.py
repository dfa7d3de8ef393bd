"""``csft-data build RECIPE -o DIR``: the whole pipeline from a recipe (``--dry-run`` prints the
plan and runs nothing). The build and the timings it leaves beside its outputs run under the
lock of the output folder (see :mod:`csft_data.pipeline.runner`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from csft_data._core import ConfigError
from csft_data.cli.common import EXIT_OK, add_recipe_run_options, stage_printer
from csft_data.write import write_text_atomic


def cmd_build(args: argparse.Namespace) -> int:
    from csft_data.pipeline import STAGES, build, load_recipe, plan
    from csft_data.pipeline.runner import check_build, output_lock

    if (args.recipe is None) == (not args.demo):
        raise ConfigError("give a recipe file, or --demo for the embedded demo recipe")
    if args.recipe is not None:
        from csft_data.pretrain import is_pretrain_recipe

        if is_pretrain_recipe(args.recipe):  # kind = "pretrain": token shards, not splits
            from csft_data.cli.pretrain import cmd_pretrain

            return cmd_pretrain(args)
    if args.demo:
        from csft_data.demo import DEMO_DIR

        recipe = load_recipe(DEMO_DIR / "recipe.toml", args.output or Path("demo_out"))
    else:
        recipe = load_recipe(args.recipe, args.output)
    if args.dry_run:
        print("\n".join(plan(recipe)))
        return EXIT_OK
    started = time.perf_counter()
    timings: dict[str, float] = {}
    current: list[Any] = [None, started]
    show_stage = stage_printer(args, STAGES)

    def on_stage(name: str, cached: bool) -> None:
        now = time.perf_counter()
        if current[0] is not None:
            timings[current[0]] = round(now - current[1], 3)
        current[:] = [name, now]
        show_stage(name, cached)

    check_build(recipe)  # before the lock: a refused build creates nothing
    with output_lock(recipe.out_dir):
        result = build(recipe, on_stage=on_stage)
        timings[str(current[0])] = round(time.perf_counter() - current[1], 3)
        # Timings vary from run to run, so they stay out of the manifest (byte-identical
        # re-runs).
        write_text_atomic(result.out_dir / "timings.json", json.dumps(timings, indent=2) + "\n")
    if args.output_format == "json":
        print(json.dumps(result.manifest, ensure_ascii=False))
    else:
        print("\n".join(result.lines()))
        print(
            f"built in {time.perf_counter() - started:.1f}s; report: "
            f"{result.out_dir / 'report.html'}"
        )
    return EXIT_OK


def register(sub: Any) -> None:
    """Adds ``build`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "build",
        help="recipe (TOML) → deduplicated, decontaminated Alpaca train/val splits + report",
    )
    p.add_argument("recipe", type=Path, nargs="?", help="the recipe file (see README: Build)")
    p.add_argument(
        "--demo", action="store_true", help="build the embedded demo recipe (no data needed)"
    )
    add_recipe_run_options(p)
    p.set_defaults(func=cmd_build)
