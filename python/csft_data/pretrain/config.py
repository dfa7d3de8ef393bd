"""The typed configuration of the pretraining-corpus stages that the SFT build does not have:
``[quality]`` (document heuristics), ``[mixture]`` (token targets per category) and ``[pack]``
(tokenizer, sequence length, shards). Same rules as :mod:`csft_data.pipeline.config`: one
frozen dataclass per table, checked the same way from a recipe or from Python, ``to_json``
for fingerprints and the manifest. Reads no file and runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from csft_data.pipeline.config import _StageConfig, _Table, resolve_path

#: Source categories (SF-Med Table 1: books, dialogues, articles, exam questions, and the
#: general corpus mixed in against forgetting).
CATEGORIES = ("book", "dialogue", "article", "exam", "general")

#: Lines that mark a document as web boilerplate when most of its lines hold one.
BOILERPLATE = (
    "版权所有",
    "转载请注明",
    "免责声明",
    "扫描二维码",
    "关注公众号",
    "点击查看",
    "上一篇",
    "下一篇",
    "ICP备",
    "All rights reserved",
    "Copyright ©",
)


@dataclass(frozen=True)
class QualityConfig(_StageConfig):
    """``[quality]``: document heuristics (``rust/pretrain/quality.rs``); a document is
    removed for the first one it fails. Shares of 1.0 (``min_cjk_share`` 0) disable a check."""

    SECTION: ClassVar[str] = "quality"

    enabled: bool = True
    min_chars: int = 20
    max_chars: int = 1_000_000
    min_cjk_share: float = 0.0
    max_repeated_lines: float = 0.3
    max_repeated_line_chars: float = 0.2
    ngram: int = 10
    max_repeated_ngram_chars: float = 0.6
    max_boilerplate_lines: float = 0.5
    boilerplate: tuple[str, ...] = BOILERPLATE

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        return dict(
            enabled=t.get("enabled", bool, cls.enabled),
            min_chars=t.count("min_chars", cls.min_chars, 0),
            max_chars=t.count("max_chars", cls.max_chars, 1),
            min_cjk_share=t.number("min_cjk_share", cls.min_cjk_share, 0.0, 1.0),
            max_repeated_lines=t.number("max_repeated_lines", cls.max_repeated_lines, 0.0, 1.0),
            max_repeated_line_chars=t.number(
                "max_repeated_line_chars", cls.max_repeated_line_chars, 0.0, 1.0
            ),
            ngram=t.count("ngram", cls.ngram, 2),
            max_repeated_ngram_chars=t.number(
                "max_repeated_ngram_chars", cls.max_repeated_ngram_chars, 0.0, 1.0
            ),
            max_boilerplate_lines=t.number(
                "max_boilerplate_lines", cls.max_boilerplate_lines, 0.0, 1.0
            ),
            boilerplate=_phrases(t),
        )

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``_core.quality_labels``."""
        d = self.to_json()
        del d["enabled"]
        return d


@dataclass(frozen=True)
class ParagraphConfig(_StageConfig):
    """``[paragraphs]``: paragraph-level exact dedup across the corpus (off by default; CCNet's
    line dedup): a paragraph (a line, or a ``blank-line`` block) of at least ``min_chars``
    characters that already appeared earlier in the corpus is removed from its document; a
    document left empty is removed."""

    SECTION: ClassVar[str] = "paragraphs"

    dedup: bool = False
    split: str = "line"
    min_chars: int = 10

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        return dict(
            dedup=t.get("dedup", bool, cls.dedup),
            split=t.choice("split", ("line", "blank-line"), cls.split),
            min_chars=t.count("min_chars", cls.min_chars),
        )


def _phrases(t: _Table) -> tuple[str, ...]:
    v = t.get("boilerplate", list, list(BOILERPLATE))
    if not all(isinstance(x, str) and x for x in v):
        raise t._err("boilerplate", f"expected a list of non-empty strings, got {v!r}")
    return tuple(v)


@dataclass(frozen=True)
class MixtureConfig(_StageConfig):
    """``[mixture]``: tokens per category. ``tokens`` gives targets per category
    (a category without one is taken once); or ``total_tokens`` is shared by category in
    proportion to ``available ** (1 / temperature)`` (1: as available; higher flattens).
    Below what a category has, a seeded subset of its documents is taken; above, whole
    epochs of it plus a seeded subset (the epochs are recorded). Neither: everything once."""

    SECTION: ClassVar[str] = "mixture"

    tokens: dict[str, int] | None = None
    total_tokens: int | None = None
    temperature: float = 1.0

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        tokens = t.get("tokens", dict, cls.tokens)
        if tokens is not None:
            for k, v in tokens.items():
                if k not in CATEGORIES:
                    raise t._err(
                        "tokens", f"unknown category {k!r}; one of {', '.join(CATEGORIES)}"
                    )
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise t._err("tokens", f"{k}: expected a token count, got {v!r}")
        total = t.count("total_tokens", cls.total_tokens, 1)
        if tokens is not None and total is not None:
            raise t._err("total_tokens", "give tokens = {...} or total_tokens, not both")
        return dict(
            tokens=dict(tokens) if tokens is not None else None,
            total_tokens=total,
            temperature=t.number("temperature", cls.temperature, 0.01, 100.0),
        )


@dataclass(frozen=True)
class PackConfig(_StageConfig):
    """``[pack]``: the model's ``tokenizer`` (a ``tokenizer.json``), the row length
    ``seq_len``, the ``eos`` appended to every document (default: the EOS the tokenizer's
    folder configures) and the ``pad`` filling the last row (default: ``eos``), and rows per
    shard."""

    SECTION: ClassVar[str] = "pack"

    tokenizer: Path = Path()
    seq_len: int = 4096
    eos: str | None = None
    pad: str | None = None
    sequences_per_shard: int = 8192

    @classmethod
    def _read(cls, t: _Table, *args: Any) -> dict[str, Any]:
        base: Path = args[0] if args else Path()
        return dict(
            tokenizer=resolve_path(base, t.require("tokenizer", str)),
            seq_len=t.count("seq_len", cls.seq_len, 2),
            eos=t.get("eos", str, cls.eos),
            pad=t.get("pad", str, cls.pad),
            sequences_per_shard=t.count("sequences_per_shard", cls.sequences_per_shard),
        )

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["tokenizer"] = str(self.tokenizer)
        return d
