"""``csft-data diversify``: SF-Med's instruction diversification (``csft_data.diversify``), seeds →
accepted instructions with their provenance (``-o``) and rejected ones with the reasons
(``--rejected``). Exit 0 when every scenario reached ``--target``, 1 when one stopped short
(``--max-steps``), 2 on an error. The options are the keys of ``[diversify]`` in a recipe."""

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
)
from csft_data.pipeline.config import SCENARIOS, SIMILARITIES, DiversifyConfig

#: The generation options (``DiversifyConfig`` keys): (type, help); default: the config's.
_OPTIONS: dict[str, tuple[Any, str]] = {
    "model": (str, "url: the endpoint's model name"),
    "api_key_env": (str, "url: the environment variable holding the API key (never shown)"),
    "template": (str, "local/vllm: chat template name, or auto (the model's own)"),
    "target": (int, "accepted instructions per scenario"),
    "max_steps": (int, "stop after this many steps per scenario (default 10 per target)"),
    "batch": (int, "generation steps per batch"),
    "history": (int, "(question, answer) pairs of history per step"),
    "keep_oldest": (int, "a bank keeps its oldest M entries"),
    "keep_newest": (int, "and its newest N"),
    "swap_every": (int, "swap the question and answer banks every K steps"),
    "temperature": (float, "sampling temperature (0: greedy)"),
    "top_p": (float, "nucleus sampling"),
    "max_new_tokens": (int, "tokens per reply"),
    "language": (str, "the expansion prompt's language: zh or en"),
    "prompt": (str, "replace the expansion prompt"),
    "min_chars": (int, "an instruction's minimum length (characters)"),
    "max_chars": (int, "and maximum"),
    "terms": (str, "medical terms file (one a line) replacing the built-in list"),
    "similarity": (str, "near-duplicate measure: " + " or ".join(SIMILARITIES)),
    "similarity_threshold": (float, "reject at this similarity to a known instruction or above"),
    "ngram": (int, "jaccard: character n-gram size"),
}


def diversify_io(args: argparse.Namespace) -> Files:
    """The files ``diversify`` reads and writes."""
    from csft_data.diversifier.run import rejected_name

    read = [("the --seeds file", args.seeds), ("the --terms file", args.terms)]
    rejected = args.rejected or rejected_name(args.output)
    return read, [("-o/--output", args.output), ("--rejected", rejected)], []


def cmd_diversify(args: argparse.Namespace) -> int:
    from csft_data.diversifier import diversify

    options = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    if args.scenario:
        options["scenarios"] = tuple(args.scenario)
    extra = {
        k: getattr(args, k)
        for k in ("device", "dtype", "concurrency", "retries", "backoff", "timeout")
    }
    result = diversify(
        args.output,
        generator=args.generator,
        seeds=args.seeds,
        rejected=args.rejected,
        cache=args.cache,
        seed=args.seed,
        progress=args.progress,
        generator_kwargs=extra,
        log=lambda line: print(f"csft-data: {line}", file=sys.stderr, flush=True),
        **options,
    )
    if args.output_format == "json":
        print(json.dumps(result.summary(), ensure_ascii=False))
    else:
        for name, s in result.scenarios.items():
            print(
                f"{name:<7} {s['accepted']:>6,} accepted, {s['rejected']:>6,} rejected in "
                f"{s['steps']:,} steps ({s['seeds']} seeds){'' if s['reached'] else ' SHORT'}"
            )
        print(f"generator {result.model}; cache {result.cache}; → {args.output}")
    return EXIT_OK if result.reached else EXIT_FINDINGS


def register(sub: Any) -> None:
    """Adds ``diversify`` to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "diversify",
        help="generate varied instructions from seeds (SF-Med's question/answer banks)",
    )
    p.add_argument(
        "--seeds",
        type=Path,
        help="seed instructions (JSONL with instruction and optional scenario, or .txt one a "
        "line); default: the built-in seeds",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="accepted instructions JSONL")
    p.add_argument("--rejected", type=Path, help="rejected ones (default: OUTPUT.rejected.jsonl)")
    p.add_argument(
        "--generator",
        required=True,
        metavar="local:DIR|url:URL|vllm:DIR",
        help="a local transformers folder, an OpenAI-compatible endpoint or vLLM offline",
    )
    p.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="single, multi (default: both)"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--cache", type=Path, help="replies cache folder (default: OUTPUT.cache)")
    g = p.add_argument_group("generation (the [diversify] keys of a recipe)")
    for key, (kind, text) in _OPTIONS.items():
        default = getattr(DiversifyConfig, key, None)
        shown = f" (default {default})" if default is not None else ""
        g.add_argument(f"--{key.replace('_', '-')}", type=kind, help=text + shown)
    m = p.add_argument_group("local model and endpoint")
    m.add_argument("--device", default="auto")
    m.add_argument("--dtype", default="auto")
    m.add_argument("--concurrency", type=int, default=4, help="url: requests at a time (4)")
    m.add_argument("--retries", type=int, default=3, help="url: more tries after 429/5xx (3)")
    m.add_argument("--backoff", type=float, default=1.0, help="url: first retry delay (1 s)")
    m.add_argument("--timeout", type=float, default=120.0, help="url: seconds per request")
    add_progress_option(p)
    add_output_format_option(p)
    p.set_defaults(func=cmd_diversify, files=diversify_io)
