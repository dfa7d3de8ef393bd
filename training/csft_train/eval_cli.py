"""``csft-data eval cmb|mcqa|memorization|judge``: model-driven evaluation.

Importing this module does not import torch: each command imports the evaluation code when it
runs. Exit codes: 0 done, 1 findings (memorized samples), 2 error (raised as ``CsftDataError``
or ``OSError`` and reported by ``csft_data.cli``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from csft_data.cli.common import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, add_output_format_option


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns a missing torch/transformers into the install hint and exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ImportError as e:
            print(f"csft-data: error: {e}", file=sys.stderr)
            return EXIT_ERROR

    return run


def _model_args(p: argparse.ArgumentParser, *, batch: int = 8) -> None:
    p.add_argument("--model", type=Path, required=True, help="local model folder (no hub names)")
    p.add_argument(
        "--template",
        default="auto",
        help="chat template: auto (the one csft-data train recorded in the model folder, else "
        "the tokenizer's chat_template) or a csft_data template name (intern2, intern2_v08, "
        "qwen, chatml, llama3, default, empty, alpaca)",
    )
    p.add_argument("--system", help="system prompt (default: the template's; '' for none)")
    p.add_argument("--batch-size", type=int, default=batch)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda:0")
    p.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])


def _mcqa_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--mode", choices=["gen", "loglik"], default="gen")
    p.add_argument("--max-new-tokens", type=int, default=32, help="gen mode budget (default 32)")
    p.add_argument("--shots", type=int, default=0, help="K-shot examples from --val")
    p.add_argument("--val", type=Path, help="CMB-val items (the K-shot pool)")
    p.add_argument("--seed", type=int, default=0, help="seed of the K-shot draw")
    p.add_argument(
        "--option-filter",
        choices=["official", "nonempty"],
        default="official",
        help="official: show options longer than one character (CMB workers/base.py); "
        "nonempty: every non-blank option",
    )
    p.add_argument("--extract", choices=["official", "strict"], default="official")
    p.add_argument(
        "--answer-prefix",
        default="答案是",
        help="loglik mode: the answer start after which the letter is scored (default 答案是)",
    )
    p.add_argument(
        "--strict-answers",
        action="store_true",
        help="an item whose answer is empty or names no option is an error (default: it is "
        "left out, counted and listed in report.json)",
    )
    p.add_argument("--limit", type=int, help="evaluate the first N items only")
    p.add_argument("--output", type=Path, help="output folder (default ./eval-<bench>-<mode>)")
    add_output_format_option(p)
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes on this node (one per GPU): the items are split between them under "
        "torchrun and the results gathered in item order (default 1)",
    )


def _skipped(args: argparse.Namespace) -> list[Any] | None:
    """The list loaders append left-out items to; ``None`` (an error) with --strict-answers."""
    return None if args.strict_answers else []


def _run_mcqa(
    args: argparse.Namespace,
    items: list[Any],
    bench: str,
    generic: bool,
    skipped: list[Any] | None = None,
) -> int:
    from csft_train import require_torch

    require_torch()  # before csft_train.dist, which imports it: the install hint, not a trace
    from csft_train import dist
    from csft_train.evaluate.items import load_cmb

    rc = dist.relaunch(args.argv, args.nproc)
    if rc is not None:
        return EXIT_OK if rc == 0 else EXIT_ERROR
    if args.limit is not None:
        items = items[: args.limit]
    pool = []
    if args.val is not None:  # items with an unusable key are only no K-shot examples
        pool = load_cmb(args.val, require_id=False, skipped=_skipped(args))
    return _evaluate(args, items, pool, bench, generic, skipped)


def _evaluate(
    args: argparse.Namespace,
    items: list[Any],
    pool: list[Any],
    bench: str,
    generic: bool,
    skipped: list[Any] | None,
) -> int:
    """Evaluates ``items`` in this process, or under torchrun this rank's consecutive block of
    them, gathered on rank 0, which alone writes the outputs."""
    import torch
    from tqdm import tqdm

    from csft_train import dist
    from csft_train.evaluate.engine import load_model, resolve_device
    from csft_train.evaluate.mcqa import (
        McqaConfig,
        evaluate_mcqa,
        merge_results,
        shard_payload,
        write_outputs,
    )
    from csft_train.evaluate.prompt import chat_renderer

    device = dist.local_device(torch.device(resolve_device(args.device)))
    d = dist.join(device)
    mine = items
    if d.active:
        per = -(-len(items) // d.world)
        mine = items[d.rank * per : (d.rank + 1) * per]
    model, tokenizer = load_model(args.model, device=str(device), dtype=args.dtype)
    renderer = chat_renderer(tokenizer, args.model, args.template, args.system)
    config = McqaConfig(
        mode=args.mode,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        shots=args.shots,
        seed=args.seed,
        option_filter=args.option_filter,
        extract=args.extract,
        answer_prefix=args.answer_prefix,
        generic_prompt=generic,
    )
    result = None
    if mine or not items:  # no items at all: every rank raises the same error
        quiet = not sys.stderr.isatty() or not d.main
        with tqdm(total=len(mine), unit="item", disable=quiet) as bar:
            result = evaluate_mcqa(
                mine,
                model,
                tokenizer,
                renderer,
                config,
                shots_pool=pool,
                progress=bar.update,
                skipped=skipped or (),
            )
    if d.active:
        shards = dist.gather_json(d, shard_payload(result), device)
        dist.close(d)
        if not d.main:
            return EXIT_OK
        result = merge_results(config, list(items), shards, skipped or ())
    assert result is not None
    out = args.output or Path(f"eval-{bench}-{args.mode}")
    paths = write_outputs(result, out)
    if args.output_format == "json":
        print(json.dumps(result.report(), ensure_ascii=False))
    else:
        print(result.summary())
        print("\nwritten: " + ", ".join(str(p) for p in paths.values()))
    return EXIT_OK


def cmd_cmb(args: argparse.Namespace) -> int:
    from csft_train.evaluate.items import load_cmb

    skipped = _skipped(args)
    items = load_cmb(args.questions, args.answers, skipped=skipped)
    return _run_mcqa(args, items, "cmb", generic=False, skipped=skipped)


def cmd_mcqa(args: argparse.Namespace) -> int:
    from csft_train.evaluate.items import load_items, load_with_adapter, with_ids

    skipped = _skipped(args)
    if args.adapter is not None:
        items = load_with_adapter(args.adapter, args.data, skipped=skipped)
    else:
        items = []
        for path in args.data:
            items += load_items(path, format=args.format, answers=args.answers, skipped=skipped)
    return _run_mcqa(args, with_ids(items), "mcqa", args.generic_prompt, skipped)


def cmd_memorization(args: argparse.Namespace) -> int:
    from csft_train.evaluate import memorization as mem
    from csft_train.evaluate.engine import load_model
    from csft_train.evaluate.prompt import chat_renderer

    records = mem.load_training_records(args.data)
    model, tokenizer = load_model(args.model, device=args.device, dtype=args.dtype)
    renderer = None
    if args.split == "response":
        renderer = chat_renderer(tokenizer, args.model, args.template, args.system)
    samples = mem.build_samples(
        records,
        tokenizer,
        renderer=renderer,
        samples=args.samples,
        prefix_ratio=args.prefix_ratio,
        seed=args.seed,
        split=args.split,
        source=str(args.data),
    )
    result = mem.check(
        samples,
        mem.model_continuation(model, tokenizer, batch_size=args.batch_size),
        threshold=args.threshold,
    )
    rows = result.rows()
    out = args.output or Path("memorization.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for r in rows:
            if r["memorized"] or args.all:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    summary = result.summary()
    if args.json is not None:
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", "utf-8")
    if args.output_format == "json":
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(
            f"{summary['memorized']:,} of {summary['samples']:,} samples memorized "
            f"({100 * summary['share']:.2f}%, ROUGE-L > {args.threshold}); mean ROUGE-L "
            f"{summary['mean_rouge_l']:.4f}; listed in {out}"
        )
    return EXIT_FINDINGS if summary["memorized"] else EXIT_OK


def cmd_judge(args: argparse.Namespace) -> int:
    from csft_data import ConfigError
    from csft_data.rouge import load_records, load_texts
    from csft_train.evaluate import judge as jd

    records = load_records(args.answers)
    refs: dict[Any, str] = {}
    if args.references is not None:
        ids, texts = load_texts(args.references)
        if ids is None:
            raise ConfigError(f"{args.references}: references need an 'id' in every record")
        refs = dict(zip(ids, texts, strict=True))
    items = []
    for n, r in enumerate(records):
        q = r.get("question", r.get("instruction"))
        a = r.get("answer", r.get("output"))
        if not isinstance(q, str) or not isinstance(a, str):
            raise ConfigError(
                f"{args.answers}: record {n} needs text fields question|instruction and "
                "answer|output"
            )
        item_id = r.get("id", n)
        items.append({"id": item_id, "question": q, "answer": a, "reference": refs.get(item_id)})
    if (args.judge_model is None) == (args.judge_url is None):
        raise ConfigError("give exactly one of --judge-model DIR and --judge-url URL")
    if args.judge_url is not None:
        if not args.judge_name:
            raise ConfigError("--judge-url needs --judge-name (the model name of the endpoint)")
        fn = jd.openai_judge(
            args.judge_url,
            args.judge_name,
            api_key=jd.api_key_from_env(args.api_key_env),
            timeout=args.timeout,
            concurrency=args.concurrency,
            retries=args.retries,
            backoff=args.backoff,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    else:
        from csft_train.evaluate.engine import load_model
        from csft_train.evaluate.prompt import chat_renderer

        model, tokenizer = load_model(args.judge_model, device=args.device, dtype=args.dtype)
        fn = jd.local_judge(
            model,
            tokenizer,
            chat_renderer(tokenizer, args.judge_model, args.template, args.system),
            batch_size=args.batch_size,
        )
    rows, summary = jd.judge_answers(items, fn)
    out = args.output or Path("judge.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_OK


def add_eval_parsers(ev: Any) -> None:
    """Adds the model-driven ``eval`` subcommands to the subparsers ``ev``."""
    c = ev.add_parser(
        "cmb", help="evaluate a model on CMB (official prompt; gen or loglik) and score it"
    )
    c.add_argument("--questions", type=Path, required=True, help="CMB test/val question items")
    c.add_argument("--answers", type=Path, help="CMB answer items (id, answer): scores")
    _mcqa_args(c)
    c.set_defaults(func=_guard(cmd_cmb))

    m = ev.add_parser(
        "mcqa", help="evaluate a model on any MCQA file (CMExam, CMMLU, CMB, via the adapters)"
    )
    m.add_argument("--data", type=Path, nargs="+", required=True, help="benchmark file(s)")
    m.add_argument(
        "--format",
        default="auto",
        choices=["auto", "cmb", "cmexam", "cmmlu"],
        help="auto: CMB JSON (option), CMExam CSV (Options), CMMLU CSV (Question,A..D,Answer)",
    )
    m.add_argument("--adapter", help="read the files with this csft_data MCQA adapter instead")
    m.add_argument("--answers", type=Path, help="CMB answers file (format cmb)")
    m.add_argument(
        "--generic-prompt",
        action="store_true",
        help="leave out CMB's exam sentence (以下是中国{exam_type}中{exam_class}考试...)",
    )
    _mcqa_args(m)
    m.set_defaults(func=_guard(cmd_mcqa))

    mem = ev.add_parser(
        "memorization", help="share of training samples whose suffix the model reproduces"
    )
    _model_args(mem)
    mem.add_argument("--data", type=Path, required=True, help="training records (Alpaca/messages)")
    mem.add_argument("--samples", type=int, help="how many records to check (default all)")
    mem.add_argument("--prefix-ratio", type=float, default=0.5)
    mem.add_argument("--seed", type=int, default=0)
    mem.add_argument("--threshold", type=float, default=0.8, help="ROUGE-L above: memorized")
    mem.add_argument(
        "--split",
        choices=["response", "text"],
        default="response",
        help="response: prompt + first part of the answer → rest of the answer; text: the "
        "plain full text is split",
    )
    mem.add_argument("--output", type=Path, help="JSONL of memorized samples (memorization.jsonl)")
    mem.add_argument("--all", action="store_true", help="list every sample, not only memorized")
    mem.add_argument("--json", type=Path, help="also write the summary as JSON here")
    add_output_format_option(mem)
    mem.set_defaults(func=_guard(cmd_memorization))

    j = ev.add_parser("judge", help="score each answer alone (1-10) with a judge model")
    j.add_argument(
        "--answers",
        type=Path,
        required=True,
        help="records with question|instruction and answer|output (and id)",
    )
    j.add_argument("--references", type=Path, help="reference answers by id (shown to the judge)")
    j.add_argument("--judge-model", type=Path, help="local judge model folder")
    j.add_argument(
        "--judge-url",
        help="OpenAI-compatible base URL (…/v1); user:password@ in it is sent as HTTP Basic "
        "authentication",
    )
    j.add_argument("--judge-name", help="model name at --judge-url")
    j.add_argument("--api-key-env", help="environment variable holding the API key")
    j.add_argument(
        "--concurrency", type=int, default=4, help="--judge-url requests at a time (default 4)"
    )
    j.add_argument(
        "--retries",
        type=int,
        default=3,
        help="--judge-url: more tries after HTTP 429/5xx, connection errors, timeouts (default 3)",
    )
    j.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        help="--judge-url: seconds before the first retry, doubled for each next (default 1)",
    )
    j.add_argument(
        "--timeout", type=float, default=120.0, help="--judge-url: seconds per request (120)"
    )
    j.add_argument("--template", default="auto")
    j.add_argument("--system")
    j.add_argument("--batch-size", type=int, default=4)
    j.add_argument("--device", default="auto")
    j.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    j.add_argument("--output", type=Path, help="per-item scores JSONL (judge.jsonl)")
    j.set_defaults(func=_guard(cmd_judge))
