"""Model evaluation on multiple-choice items (CMB and the others), in two modes.

``gen``: the prompt ends where the assistant's answer starts; greedy decoding of up to
``max_new_tokens``; the letters are extracted with ``csft_data.cmb.extract_choice``
(``official`` or ``strict``). This is the mode comparable with CMB leaderboard numbers.

``loglik``: the prompt also holds the start of the answer (``answer_prefix``, default
``答案是``, the form of the few-shot answers and of the SFT data the adapters write); one forward
pass per batch gives the next-token log-probability of each shown option letter (the letter as
it would follow the prefix, see ``engine.letter_token_ids``) and the most likely one is the
answer. No extraction, deterministic, several times faster (one position instead of a decoded
answer). Multi-answer items (``multi``) cannot be answered by one letter: they fall back to
``gen`` and the report says how many did.

Outputs (:func:`write_outputs`): ``predictions.json`` in CMB's submission format
(``[{"id", "model_answer"}]``, item order), ``outputs.jsonl`` (per item: mode, the generated
text or the letters' log-probs, the answer and whether it is right), ``scores.json`` (the
``csft_data.cmb.score`` scores when the items carry keys) and ``report.json`` (settings, counts,
timing, and under ``skipped`` the items of the files read that were left out because their key
is unusable, with file, record, id and why: see ``items.SkippedItem``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from csft_data import ConfigError
from csft_data.cmb import CmbScore, extract_choice, score
from csft_train.evaluate import engine
from csft_train.evaluate.items import McqaItem, SkippedItem
from csft_train.evaluate.prompt import (
    ChatRenderer,
    OptionFilter,
    filtered_options,
    messages_for,
    pick_shots,
    shown_options,
)

Mode = Literal["gen", "loglik"]


@dataclass(frozen=True)
class McqaConfig:
    mode: Mode = "gen"
    batch_size: int = 8
    max_new_tokens: int = 32
    shots: int = 0
    seed: int = 0
    option_filter: OptionFilter = "official"
    extract: Literal["official", "strict"] = "official"
    answer_prefix: str = "答案是"
    generic_prompt: bool = False


@dataclass
class McqaResult:
    config: McqaConfig
    items: list[McqaItem]
    answers: list[str]
    records: list[dict[str, Any]]
    counts: dict[str, int]
    seconds: dict[str, float]
    score: CmbScore | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Items of the files read left out because their key is unusable (not evaluated).
    skipped: list[SkippedItem] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        total = self.seconds.get("total", 0.0)
        return len(self.items) / total if total > 0 else math.inf

    def predictions(self) -> list[dict[str, Any]]:
        return [
            {"id": i.id, "model_answer": a} for i, a in zip(self.items, self.answers, strict=True)
        ]

    def report(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "counts": self.counts,
            "seconds": self.seconds,
            "items_per_second": self.items_per_second,
            "score": self.score.to_json() if self.score is not None else None,
            "skipped": [s.to_json() for s in self.skipped],
            **self.extra,
        }

    def summary(self) -> str:
        c = self.counts
        lines = [
            f"{c['items']:,} items in {self.seconds['total']:.1f} s "
            f"({self.items_per_second:.2f} items/s); mode {self.config.mode}",
        ]
        if self.config.mode == "loglik":
            lines.append(
                f"loglik {c['loglik']:,} items; multi-answer items answered by generation "
                f"instead: {c['multi_fallback']:,}"
            )
        lines.append(
            f"generated {c['generated']:,}; no answer extracted: {c['extraction_failures']:,}; "
            f"items with options hidden by the option filter: {c['options_hidden']:,}"
        )
        if self.skipped:
            lines.append(
                f"left out: {len(self.skipped):,} items without a usable answer (empty, or "
                "naming no option), listed in report.json under 'skipped'"
            )
        if self.score is not None:
            lines += ["", self.score.table()]
        return "\n".join(lines)


def evaluate_mcqa(
    items: Sequence[McqaItem],
    model: Any,
    tokenizer: Any,
    renderer: ChatRenderer,
    config: McqaConfig = McqaConfig(),
    *,
    shots_pool: Sequence[McqaItem] = (),
    progress: Callable[[int], None] | None = None,
    skipped: Sequence[SkippedItem] = (),
) -> McqaResult:
    """Evaluates ``model`` on ``items`` (see the module comment). ``shots_pool``: the items
    K-shot examples are drawn from (CMB-val) when ``config.shots > 0``. ``skipped``: the items
    the loaders left out (unusable keys), counted and listed in the report."""
    if not items:
        if skipped:
            raise ConfigError(
                f"no items to evaluate: all {len(skipped):,} items read lack a usable answer "
                f"(the first: {skipped[0].message()})"
            )
        raise ConfigError("no items to evaluate")
    if config.mode not in ("gen", "loglik"):
        raise ConfigError(f"unknown mode {config.mode!r}: expected gen or loglik")
    if config.shots > 0 and not shots_pool:
        raise ConfigError(f"{config.shots}-shot prompts need the val items (--val)")
    engine.prepare_tokenizer(tokenizer)
    t_start = time.perf_counter()
    hidden = sum(len(filtered_options(i, config.option_filter)) < len(i.options) for i in items)
    shown = [shown_options(i, config.option_filter) for i in items]
    texts = []
    for item in items:
        shots = pick_shots(item, shots_pool, config.shots, seed=config.seed)
        msgs = messages_for(item, shots, config.option_filter, generic=config.generic_prompt)
        texts.append(renderer.render(msgs))
    records: list[dict[str, Any]] = [{"id": i.id} for i in items]
    answers = [""] * len(items)
    seconds: dict[str, float] = {}

    by_loglik = [n for n, i in enumerate(items) if config.mode == "loglik" and not i.multi]
    by_gen = [n for n, i in enumerate(items) if not (config.mode == "loglik" and not i.multi)]
    t0 = time.perf_counter()
    seconds["prompts"] = t0 - t_start

    if by_loglik:
        letters = "".join(sorted({k for n in by_loglik for k in shown[n]}))
        letter_ids = engine.letter_token_ids(tokenizer, config.answer_prefix, letters)
        ids = engine.encode(tokenizer, [texts[n] + config.answer_prefix for n in by_loglik])
        with engine.Timer(model) as tm:
            rows = engine.next_token_logprobs(
                model,
                ids,
                [letter_ids[c] for c in letters],
                pad_id=int(tokenizer.pad_token_id),
                batch_size=config.batch_size,
                progress=progress,
            )
        seconds["loglik"] = tm.seconds
        for n, row, p in zip(by_loglik, rows, ids, strict=True):
            lp = {c: v for c, v in zip(letters, row, strict=True) if c in shown[n]}
            best = max(lp, key=lambda c: (lp[c], -ord(c)))
            answers[n] = best
            records[n].update(mode="loglik", prompt_tokens=len(p), logprobs=lp, model_answer=best)

    failures = 0
    if by_gen:
        ids = engine.encode(tokenizer, [texts[n] for n in by_gen])
        with engine.Timer(model) as tm:
            new = engine.generate_greedy(
                model,
                tokenizer,
                ids,
                max_new_tokens=config.max_new_tokens,
                batch_size=config.batch_size,
                progress=progress,
            )
        seconds["gen"] = tm.seconds
        outputs = tokenizer.batch_decode(new, skip_special_tokens=True)
        for n, out, p, toks in zip(by_gen, outputs, ids, new, strict=True):
            item = items[n]
            got = extract_choice(out, list(shown[n]), config.extract, multi=item.multi)
            failures += got == ""
            answers[n] = got
            records[n].update(
                mode="gen",
                prompt_tokens=len(p),
                output=out,
                output_tokens=len(toks),
                model_answer=got,
            )
    seconds["total"] = time.perf_counter() - t_start

    counts = {
        "items": len(items),
        "multi_answer": sum(i.multi for i in items),
        "loglik": len(by_loglik),
        "generated": len(by_gen),
        "multi_fallback": sum(items[n].multi for n in by_gen) if config.mode == "loglik" else 0,
        "extraction_failures": failures,
        "options_hidden": hidden,
    }
    return _result(config, list(items), answers, records, counts, seconds, skipped)


def _result(
    config: McqaConfig,
    items: list[McqaItem],
    answers: list[str],
    records: list[dict[str, Any]],
    counts: dict[str, int],
    seconds: dict[str, float],
    skipped: Sequence[SkippedItem],
) -> McqaResult:
    """The result of ``answers`` to ``items``: keys and correctness into the records, the CMB
    score over the keyed items, and the counts of keyed and skipped items."""
    keyed = [i for i in items if i.answer is not None]
    for n, item in enumerate(items):
        if item.answer is not None:
            records[n]["answer"] = item.answer
            records[n]["correct"] = answers[n] == item.answer
    result_score = None
    if keyed:
        result_score = score(
            {i.id: a for i, a in zip(items, answers, strict=True)},
            [i.answer_item() for i in keyed],
        )
    return McqaResult(
        config=config,
        items=items,
        answers=answers,
        records=records,
        counts={**counts, "keyed": len(keyed), "skipped": len(skipped)},
        seconds=seconds,
        score=result_score,
        skipped=list(skipped),
    )


#: Counts of one shard that are not sums over the items (recomputed by ``merge_results``).
_GLOBAL_COUNTS = ("keyed", "skipped")


def shard_payload(result: McqaResult | None) -> dict[str, Any]:
    """What one rank of a data-parallel evaluation sends to rank 0 (JSON-ready): its answers,
    records, counts and timings; an empty shard for a rank that had no items."""
    if result is None:
        return {"answers": [], "records": [], "counts": {}, "seconds": {}}
    counts = {k: v for k, v in result.counts.items() if k not in _GLOBAL_COUNTS}
    return {
        "answers": result.answers,
        "records": result.records,
        "counts": counts,
        "seconds": result.seconds,
    }


def merge_results(
    config: McqaConfig,
    items: list[McqaItem],
    shards: Sequence[dict[str, Any]],
    skipped: Sequence[SkippedItem] = (),
) -> McqaResult:
    """One result from the payloads of the ranks, which evaluated consecutive blocks of
    ``items`` in rank order: answers and records in item order, counts summed, each timing the
    slowest rank's (the ranks ran at once), the score over all items."""
    answers = [a for s in shards for a in s["answers"]]
    records = [r for s in shards for r in s["records"]]
    if len(answers) != len(items):
        raise ValueError(f"the shards hold {len(answers)} answers for {len(items)} items")
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for s in shards:
        for k, v in s["counts"].items():
            counts[k] = counts.get(k, 0) + int(v)
        for k, v in s["seconds"].items():
            seconds[k] = max(seconds.get(k, 0.0), float(v))
    return _result(config, items, answers, records, counts, seconds, skipped)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_outputs(result: McqaResult, out_dir: str | Path) -> dict[str, Path]:
    """Writes ``predictions.json``, ``outputs.jsonl``, ``report.json`` and, with keys,
    ``scores.json`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "predictions": out / "predictions.json",
        "outputs": out / "outputs.jsonl",
        "report": out / "report.json",
    }
    _atomic_write(
        paths["predictions"],
        json.dumps(result.predictions(), ensure_ascii=False, indent=1) + "\n",
    )
    _atomic_write(
        paths["outputs"],
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.records),
    )
    _atomic_write(paths["report"], json.dumps(result.report(), ensure_ascii=False, indent=2) + "\n")
    if result.score is not None:
        paths["scores"] = out / "scores.json"
        _atomic_write(
            paths["scores"],
            json.dumps(result.score.to_json(), ensure_ascii=False, indent=2) + "\n",
        )
    return paths
