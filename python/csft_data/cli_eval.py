"""``csft-data eval``: scoring of benchmark answers without a model (``eval score``).

Model-driven evaluation (``eval cmb``, ``eval mcqa``, ``eval memorization``, ``eval judge``)
belongs to the training module (``training/``) and is hooked in by ``cli_train``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from csft_data.cli_train import add_model_eval_parsers
from csft_data.cmb import score_files

EXIT_OK = 0


def cmd_score(args: argparse.Namespace) -> int:
    result = score_files(
        args.predictions, args.answers, extract=args.extract, questions=args.questions
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    if args.output_format == "json":
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(result.table())
        print(
            f"\n{result.correct:,} of {result.items:,} items right; "
            f"{result.missing:,} had no prediction (counted wrong)"
        )
    return EXIT_OK


def add_eval_parser(sub: Any) -> None:
    """Adds ``eval`` and its subcommands to the top-level subparsers ``sub``."""
    p = sub.add_parser("eval", help="benchmark evaluation: score predictions (CMB)")
    ev = p.add_subparsers(dest="eval_command", required=True, metavar="EVAL")
    s = ev.add_parser(
        "score",
        help="score CMB predictions against answers: per class, per exam type, micro, macro",
    )
    s.add_argument(
        "--predictions",
        type=Path,
        required=True,
        help="JSON/JSONL items {id, model_answer} (CMB submission) or raw {id, output}",
    )
    s.add_argument(
        "--answers",
        type=Path,
        required=True,
        help="CMB answer items {id, exam_type, exam_class, question_type, answer}",
    )
    s.add_argument(
        "--extract",
        choices=["official", "strict"],
        help="extract letters from raw outputs (default official; forces re-extraction of "
        "model_answer too when given)",
    )
    s.add_argument("--questions", type=Path, help="CMB question items (option keys for strict)")
    s.add_argument("--json", type=Path, help="also write the scores as JSON here")
    s.add_argument("--output-format", choices=["text", "json"], default="text")
    s.set_defaults(func=cmd_score)
    add_model_eval_parsers(ev)
