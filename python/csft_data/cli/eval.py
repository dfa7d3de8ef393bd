"""``csft-data eval``: scoring without a model: CMB answers (``eval score``) and ROUGE-L of
outputs against references with SF-Med's win/tie/loss (``eval rouge``).

Model-driven evaluation (``eval cmb``, ``eval mcqa``, ``eval memorization``, ``eval judge``)
belongs to the training module (``training/``) and is hooked in by :mod:`csft_data.cli.train`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from csft_data.cli.common import EXIT_OK, Files, add_output_format_option
from csft_data.cli.train import add_model_eval_parsers
from csft_data.cmb import score_files
from csft_data.rouge import PREDICTION_FIELDS, REFERENCE_FIELDS, rouge_files


def score_io(args: argparse.Namespace) -> Files:
    """The files ``eval score`` reads and writes."""
    read = [
        ("the --predictions file", args.predictions),
        ("the --answers file", args.answers),
        ("the --questions file", args.questions),
    ]
    return read, [("--json", args.json)], []


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


def rouge_io(args: argparse.Namespace) -> Files:
    """The files ``eval rouge`` reads and writes."""
    read = [
        ("the --predictions file", args.predictions),
        ("the --references file", args.references),
        ("the --against file", args.against),
    ]
    return read, [("--json", args.json), ("--per-item", args.per_item)], []


def cmd_rouge(args: argparse.Namespace) -> int:
    report = rouge_files(
        args.predictions,
        args.references,
        against=args.against,
        margin=args.margin,
        prediction_fields=args.field or PREDICTION_FIELDS,
        reference_fields=args.reference_field or REFERENCE_FIELDS,
    )
    summary = report.to_json()
    if args.json is not None:
        args.json.write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    if args.per_item is not None:
        with args.per_item.open("w", encoding="utf-8") as f:
            for n, item_id in enumerate(report.ids):
                row: dict[str, Any] = {
                    "id": item_id,
                    "precision": float(report.scores.precision[n]),
                    "recall": float(report.scores.recall[n]),
                    "fmeasure": float(report.scores.fmeasure[n]),
                }
                if report.against is not None:
                    row["against_fmeasure"] = float(report.against.fmeasure[n])
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.output_format == "json":
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(report.table())
    return EXIT_OK


def register(sub: Any) -> None:
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
    add_output_format_option(s)
    s.set_defaults(func=cmd_score, files=score_io)
    r = ev.add_parser(
        "rouge",
        help="ROUGE-L (character level for Chinese) of predictions against references; "
        "with --against, SF-Med's win/tie/loss of two systems",
    )
    r.add_argument(
        "--predictions",
        type=Path,
        required=True,
        help="JSON/JSONL/CSV/Parquet records with an output text (fields tried: "
        + ", ".join(PREDICTION_FIELDS)
        + "); matched to references by 'id', else by position",
    )
    r.add_argument(
        "--references",
        type=Path,
        required=True,
        help="reference records (fields tried: " + ", ".join(REFERENCE_FIELDS) + ")",
    )
    r.add_argument(
        "--against", type=Path, help="a second system's predictions: win/tie/loss of the first"
    )
    r.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="F-measure difference at or below which two systems tie (default 0: exact ties)",
    )
    r.add_argument("--field", help="the predictions' text field (default: the first present)")
    r.add_argument("--reference-field", help="the references' text field")
    r.add_argument("--json", type=Path, help="also write the summary as JSON here")
    r.add_argument("--per-item", type=Path, help="write per-item scores as JSONL here")
    add_output_format_option(r)
    r.set_defaults(func=cmd_rouge, files=rouge_io)
    add_model_eval_parsers(ev)
