"""Memorization check (SF-Med, Appendix): does the model reproduce training samples verbatim?

For each sampled training record the text is split into a prefix and a suffix at
``prefix_ratio`` of its tokens; the model continues the prefix greedily for as many tokens as
the suffix has; the continuation is compared with the true suffix by ROUGE-L (the Rust one of
``csft_data.rouge``, character level for Chinese) and a sample whose F-measure is above
``threshold`` (0.8, as SF-Med) counts as memorized. SF-Med found 0.84% of 61,225 samples above
0.8.

``split="response"`` (default): the prompt is the record's conversation up to the final answer,
rendered with the chat template as in training, and only the answer is split, so the prefix is
prompt + the first part of the answer. ``split="text"``: the plain text
``instruction + input + output`` (history turns first) is split, with no template, which
measures memorization of the question as well.

The continuation function is a parameter (``continue_fn``: prefix token ids and per-sample
token budgets → generated texts), so the check can run against any generator; the CLI uses
batched greedy generation of the model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from csft_data import ConfigError
from csft_data.rouge import load_records, rouge_l
from csft_train.evaluate.prompt import ChatRenderer

ContinueFn = Callable[[list[list[int]], list[int]], list[str]]
Split = Literal["response", "text"]


@dataclass(frozen=True)
class MemorizationSample:
    index: int
    id: Any
    prefix_ids: list[int]
    suffix_ids: list[int]
    suffix: str


@dataclass(frozen=True)
class MemorizationResult:
    samples: list[MemorizationSample]
    continuations: list[str]
    fmeasure: list[float]
    threshold: float

    @property
    def memorized(self) -> list[int]:
        """Positions (in ``samples``) of the memorized samples."""
        return [n for n, f in enumerate(self.fmeasure) if f > self.threshold]

    @property
    def share(self) -> float:
        return len(self.memorized) / len(self.samples) if self.samples else 0.0

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "index": s.index,
                "id": s.id,
                "rouge_l": self.fmeasure[n],
                "memorized": self.fmeasure[n] > self.threshold,
                "suffix": s.suffix,
                "continuation": self.continuations[n],
            }
            for n, s in enumerate(self.samples)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "samples": len(self.samples),
            "memorized": len(self.memorized),
            "share": self.share,
            "threshold": self.threshold,
            "mean_rouge_l": sum(self.fmeasure) / len(self.fmeasure) if self.fmeasure else 0.0,
        }


def _turns(rec: Mapping[str, Any], where: str) -> tuple[str | None, list[str]]:
    """(system, [user, assistant, ..., user, assistant]) of an Alpaca or messages record."""
    for key in ("messages", "conversations", "conversation"):
        if key in rec and "output" not in rec:
            msgs = rec[key]
            if not isinstance(msgs, list) or not msgs:
                raise ConfigError(f"{where}: field {key!r} is not a list of messages")
            system = None
            texts: list[str] = []
            for m in msgs:
                if not isinstance(m, dict):
                    raise ConfigError(f"{where}: field {key!r} holds a non-object message")
                role = m.get("role", m.get("from"))
                content = m.get("content", m.get("value"))
                if not isinstance(content, str):
                    raise ConfigError(f"{where}: field {key!r} has a message without text")
                if role == "system":
                    system = content
                else:
                    texts.append(content)
            if len(texts) < 2 or len(texts) % 2:
                raise ConfigError(f"{where}: field {key!r} does not end with an assistant turn")
            return system, texts
    out = rec.get("output")
    if not isinstance(out, str) or not out:
        raise ConfigError(f"{where}: field 'output' is missing or not text")
    instruction = str(rec.get("instruction") or "")
    inp = str(rec.get("input") or "")
    query = "\n".join(t for t in (instruction, inp) if t)
    turns: list[str] = []
    for pair in rec.get("history") or []:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ConfigError(f"{where}: field 'history' is not a list of [user, assistant]")
        turns += [str(pair[0]), str(pair[1])]
    system = rec.get("system")
    return (str(system) if system else None), [*turns, query, out]


def build_samples(
    records: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    *,
    renderer: ChatRenderer | None,
    samples: int | None = None,
    prefix_ratio: float = 0.5,
    seed: int = 0,
    split: Split = "response",
    source: str = "data",
) -> list[MemorizationSample]:
    """Samples ``samples`` records (all when ``None``; a seeded random choice otherwise) and
    splits each (see the module comment)."""
    if not 0.0 < prefix_ratio < 1.0:
        raise ConfigError(f"prefix ratio must be in (0, 1), got {prefix_ratio}")
    if split not in ("response", "text"):
        raise ConfigError(f"unknown split {split!r}: expected response or text")
    if split == "response" and renderer is None:
        raise ConfigError("split 'response' needs a chat template")
    indices = list(range(len(records)))
    if samples is not None and samples < len(indices):
        indices = sorted(random.Random(seed).sample(indices, samples))
    out = []
    for i in indices:
        rec = records[i]
        system, turns = _turns(rec, f"{source}: record {i}")
        if split == "response":
            assert renderer is not None
            r = ChatRenderer(renderer.tokenizer, renderer.template, system or renderer.system)
            head = tokenizer(r.render(turns[:-1]), add_special_tokens=False)["input_ids"]
            body = tokenizer(turns[-1], add_special_tokens=False)["input_ids"]
        else:
            head = []
            body = tokenizer("".join(turns), add_special_tokens=False)["input_ids"]
        body = list(body)
        if len(body) < 2:
            continue
        k = min(max(1, round(len(body) * prefix_ratio)), len(body) - 1)
        suffix_ids = body[k:]
        out.append(
            MemorizationSample(
                index=i,
                id=rec.get("id", i),
                prefix_ids=list(head) + body[:k],
                suffix_ids=suffix_ids,
                suffix=tokenizer.decode(suffix_ids, skip_special_tokens=True),
            )
        )
    return out


def check(
    samples: Sequence[MemorizationSample], continue_fn: ContinueFn, *, threshold: float = 0.8
) -> MemorizationResult:
    """Continues each sample's prefix with ``continue_fn`` and scores it against the suffix."""
    conts = continue_fn([s.prefix_ids for s in samples], [len(s.suffix_ids) for s in samples])
    if len(conts) != len(samples):
        raise ConfigError(f"the generator gave {len(conts)} texts for {len(samples)} samples")
    scores = rouge_l(conts, [s.suffix for s in samples])
    return MemorizationResult(
        samples=list(samples),
        continuations=list(conts),
        fmeasure=[float(x) for x in scores.fmeasure],
        threshold=threshold,
    )


def model_continuation(model: Any, tokenizer: Any, *, batch_size: int = 8) -> ContinueFn:
    """Batched greedy generation with ``model`` as a :data:`ContinueFn`."""
    from csft_train.evaluate import engine

    engine.prepare_tokenizer(tokenizer)

    def run(prefixes: list[list[int]], budgets: list[int]) -> list[str]:
        new = engine.generate_greedy(
            model, tokenizer, prefixes, max_new_tokens=budgets, batch_size=batch_size
        )
        return list(tokenizer.batch_decode(new, skip_special_tokens=True))

    return run


def load_training_records(path: str | Path) -> list[dict[str, Any]]:
    records = load_records(path)
    if not records:
        raise ConfigError(f"{path}: no records")
    return records
