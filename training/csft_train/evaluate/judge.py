"""Single-answer grading with a judge model (SF-Med §4.4): each answer is scored alone on a
1–10 scale with a fixed rubric, so no answer is favoured for being shown first (the position
bias of pairwise judging); two systems are compared by their scores afterwards.

The judge is a local model folder (greedy generation) or an OpenAI-compatible chat-completions
endpoint given by the user (``--judge-url``; the key, if any, comes from the environment
variable named by ``--api-key-env``), called through ``chat_client.py``: requests run
``concurrency`` at a time, transient failures are retried with backoff, a request that fails
for good stops the run with a :class:`JudgeError` naming the URL, the item and the reply, and
no credential reaches a message (:func:`redact`). Nothing is called unless the user runs
``eval judge``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from csft_data import ConfigError
from csft_train.evaluate.chat_client import (
    REDACTED,
    ChatError,
    api_key_from_env,
    chat_client,
    redact,
)

__all__ = [
    "REDACTED",
    "JudgeError",
    "api_key_from_env",
    "judge_answers",
    "judge_prompt",
    "local_judge",
    "openai_judge",
    "parse_score",
    "redact",
]

#: The rubric; ``{question}``, ``{answer}`` and ``{reference_block}`` are filled in.
RUBRIC = (
    "你是一名资深的临床医生和医学教育专家。请独立评价下面这个回答的质量，不要与其他回答比较。\n"
    "评分标准（1–10 分）：\n"
    "1. 医学准确性：内容是否正确、无事实错误或危险建议（最重要）；\n"
    "2. 针对性：是否回答了患者的问题，必要时是否询问关键信息；\n"
    "3. 安全性：是否提示就医、用药风险等必要的安全信息；\n"
    "4. 表达：是否简洁清楚、易于患者理解（长度本身不加分）。\n"
    "{reference_block}"
    "【问题】\n{question}\n\n【回答】\n{answer}\n\n"
    "请先用一两句话说明理由，最后一行只写“评分：X”，X 为 1 到 10 的整数。"
)
REFERENCE_BLOCK = "下面的参考答案仅供参考：\n【参考答案】\n{reference}\n\n"

JudgeFn = Callable[[list[str]], list[str]]

_SCORE_PATTERNS = (
    re.compile(r"(?:评分|得分|分数|总分|score|rating)\s*[:：为是]?\s*\**\s*(\d+(?:\.\d+)?)", re.I),
    re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]"),
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:/\s*10|分)"),
)


def judge_prompt(question: str, answer: str, reference: str | None = None) -> str:
    block = REFERENCE_BLOCK.format(reference=reference) if reference else ""
    return RUBRIC.format(question=question, answer=answer, reference_block=block)


def parse_score(text: str) -> float | None:
    """The 1–10 score in a judge's reply: the last ``评分：X`` (or ``Score: X``, ``[[X]]``,
    ``X/10``, ``X分``) found; ``None`` when there is none in range."""
    for pattern in _SCORE_PATTERNS:
        found = [float(m.group(1)) for m in pattern.finditer(text)]
        found = [x for x in found if 1.0 <= x <= 10.0]
        if found:
            return found[-1]
    return None


class JudgeError(ChatError):
    """A judge request that failed for good (see :class:`ChatError`); :func:`judge_answers`
    adds the ``item_id``."""

    what: ClassVar[str] = "judge"


def openai_judge(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = 120.0,
    max_tokens: int = 256,
    concurrency: int = 4,
    retries: int = 3,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    log: Callable[[str], None] | None = None,
) -> JudgeFn:
    """A :data:`JudgeFn` calling ``{base_url}/chat/completions`` (temperature 0), one request
    per prompt, ``concurrency`` requests at a time; replies come back in prompt order. Retries,
    errors (:class:`JudgeError`) and credentials are those of
    :func:`~csft_train.evaluate.chat_client.chat_client`."""
    ask = chat_client(
        base_url,
        model,
        api_key=api_key,
        params={"temperature": 0, "max_tokens": max_tokens},
        timeout=timeout,
        concurrency=concurrency,
        retries=retries,
        backoff=backoff,
        max_backoff=max_backoff,
        log=log,
        error=JudgeError,
    )

    def run(prompts: list[str]) -> list[str]:
        return ask([{"messages": [{"role": "user", "content": p}]} for p in prompts])

    return run


def local_judge(
    model: Any, tokenizer: Any, renderer: Any, *, batch_size: int = 4, max_new_tokens: int = 256
) -> JudgeFn:
    """A :data:`JudgeFn` generating greedily with a local model (prompts rendered with its chat
    template)."""
    from csft_train.evaluate import engine

    engine.prepare_tokenizer(tokenizer)

    def run(prompts: list[str]) -> list[str]:
        ids = engine.encode(tokenizer, [renderer.render([p]) for p in prompts])
        new = engine.generate_greedy(
            model, tokenizer, ids, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        return list(tokenizer.batch_decode(new, skip_special_tokens=True))

    return run


def judge_answers(
    items: Sequence[Mapping[str, Any]], judge: JudgeFn
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Scores each item (``question``, ``answer``, optional ``reference``, ``id``) alone.
    Returns per-item rows (``score`` is ``None`` when the reply has none) and a summary."""
    prompts = [
        judge_prompt(str(i["question"]), str(i["answer"]), i.get("reference")) for i in items
    ]
    try:
        replies = judge(prompts)
    except JudgeError as e:
        if e.item_id is None and 0 <= e.index < len(items) and items[e.index].get("id") is not None:
            raise e.with_item_id(items[e.index].get("id")) from e
        raise
    if len(replies) != len(prompts):
        raise ConfigError(f"the judge gave {len(replies)} replies for {len(prompts)} answers")
    rows: list[dict[str, Any]] = []
    for item, reply in zip(items, replies, strict=True):
        rows.append({"id": item.get("id"), "score": parse_score(reply), "judgement": reply})
    scored: list[float] = [r["score"] for r in rows if r["score"] is not None]
    summary = {
        "items": len(rows),
        "scored": len(scored),
        "unparsed": len(rows) - len(scored),
        "mean": sum(scored) / len(scored) if scored else None,
    }
    return rows, summary
