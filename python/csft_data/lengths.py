"""Token-length bucketing: token counts of SFT records under a real Hugging Face tokenizer and a
LLaMA-Factory chat template, and what a cut-off length would do to them.

Counting runs in the Rust core (the ``tokenizers`` crate, in parallel, GIL released) and gives
the same counts as the Python ``tokenizers`` package on the same ``tokenizer.json``. Records are
rendered turn by turn the way LLaMA-Factory's ``encode_multiturn`` encodes them, so the prompt
(system, user turns, history) and the final response are counted apart, and truncation to a
cut-off follows LLaMA-Factory's ``infer_seqlen`` turn loop (without ``mask_history``/packing).

:func:`encode_supervised` and :func:`encode_pairwise` give the token ids and labels training uses,
from the same templates and the same truncation rule (so the report and training agree token for
token), as flat arrays plus offsets.
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core
from csft_data._core import TokenCounter
from csft_data.dedup import _source_names
from csft_data.progress import StageBar

#: The cut-offs reported when none are given (LLaMA-Factory's 1024 of mid-2024, 2048 now).
DEFAULT_CUTOFFS = (512, 1024, 2048)


#: A record's total in ``record_totals`` when it was rejected (not counted).
NOT_COUNTED = 0xFFFFFFFF


def template_names() -> list[str]:
    """The built-in chat templates (LLaMA-Factory slots; see ``rust/lengths/template.rs``)."""
    return _core.template_names()


def template_tokens(name: str) -> dict[str, Any]:
    """A built-in template's usual token names and default system prompt:
    ``{"bos_token": str | None, "eos_token": str | None, "default_system": str}``."""
    return _core.template_tokens(name)


def _counter(tokenizer: str | Path | TokenCounter) -> TokenCounter:
    if isinstance(tokenizer, TokenCounter):
        return tokenizer
    if not Path(tokenizer).is_file():
        raise FileNotFoundError(errno.ENOENT, "no tokenizer.json file here", str(tokenizer))
    return TokenCounter(tokenizer)


def count_tokens(
    tokenizer: str | Path | TokenCounter, texts: Sequence[str]
) -> npt.NDArray[np.uint32]:
    """Token counts of ``texts`` (no special tokens added, as
    ``tokenizer.encode(t, add_special_tokens=False)``), counted in parallel."""
    raw = _counter(tokenizer).count(list(texts))
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32, copy=False)


@dataclass(frozen=True)
class CutoffStats:
    """What one cut-off does to one source: records truncated, records whose final response is
    cut (shortened or not reached), records whose final response keeps no token."""

    cutoff: int
    bucket: int
    truncated: int
    response_cut: int
    response_dropped: int
    truncated_share: float
    response_cut_share: float


@dataclass(frozen=True)
class SourceLengthStats:
    """Token statistics of one source (``records = counted + rejected``)."""

    source: str
    records: int
    counted: int
    rejected: int
    mean: float
    p50: int
    p90: int
    p95: int
    p99: int
    max: int
    total_tokens: int
    cutoffs: tuple[CutoffStats, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceLengthStats:
        q = d["quantiles"]
        return cls(
            source=d["source"],
            records=d["records"],
            counted=d["counted"],
            rejected=d["rejected"],
            mean=d["mean"],
            p50=q["p50"],
            p90=q["p90"],
            p95=q["p95"],
            p99=q["p99"],
            max=q["max"],
            total_tokens=d["total_tokens"],
            cutoffs=tuple(
                CutoffStats(
                    cutoff=c["cutoff"],
                    bucket=c["bucket"],
                    truncated=c["truncated"],
                    response_cut=c["response_cut"],
                    response_dropped=c["response_dropped"],
                    truncated_share=c["truncated_share"],
                    response_cut_share=c["response_cut_share"],
                )
                for c in d["cutoffs"]
            ),
        )


def token_lengths(
    inputs: Sequence[str | Path],
    tokenizer: str | Path | TokenCounter,
    *,
    template: str = "intern2",
    cutoffs: Sequence[int] = DEFAULT_CUTOFFS,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    buckets: str | Path | None = None,
    quarantine: str | Path | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    batch_size: int = 4096,
    progress: bool = False,
    num_threads: int | None = None,
    record_totals: bool = False,
) -> dict[str, Any]:
    """Token lengths of every record of ``inputs`` (each file one source, named by its stem).

    Records are Alpaca style (``instruction``, ``input``, ``output``, ``history``, ``system``)
    or messages style (``messages``/``conversations``/``conversation``). ``system`` replaces
    the template's default system prompt (``""``: none); a record's own ``system`` wins.
    ``bos_token``/``eos_token`` override the token names the template expects. Returns per
    source and in total: records, token sums, mean, quantiles (nearest rank), a power-of-two
    histogram and, per cut-off, the records truncated / with the response cut. ``buckets``
    gets one JSON line per counted record (``source``, ``index``, ``prompt_tokens``,
    ``response_tokens``, ``total_tokens``, ``bucket``: the index of the smallest cut-off that
    holds it, or ``"over"``); records that cannot be rendered are rejected with a reason (into
    ``quarantine`` if given). Outputs are written atomically. ``num_threads``: the threads
    the counting uses (default: one per core); the counts do not depend on it.
    ``record_totals``: also return, under that key, one ``uint32`` array per source with each
    record's total tokens by record index (:data:`NOT_COUNTED` for rejected records).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise _core.ConfigError("lengths needs at least one input file")
    cuts = sorted({int(c) for c in cutoffs})
    if not cuts or cuts[0] <= 0:
        raise _core.ConfigError(f"cut-offs must be positive token counts, got {list(cutoffs)}")
    counter = _counter(tokenizer)
    bar = StageBar("lengths") if progress else None

    t0 = time.perf_counter()
    try:
        stats = _core.token_lengths(
            list(zip(paths, _source_names(paths), strict=True)),
            counter,
            template=template,
            cutoffs=cuts,
            system=system,
            bos_token=bos_token,
            eos_token=eos_token,
            buckets=buckets,
            quarantine=quarantine,
            format=format,
            encoding=encoding,
            on_error=on_error,
            batch_size=batch_size,
            progress=bar,
            num_threads=num_threads,
        )
    finally:
        if bar is not None:
            bar.close()
    stats["seconds"] = time.perf_counter() - t0
    raw = stats.pop("record_totals")
    if record_totals:
        stats["record_totals"] = [_u32(b) for b in raw]
    return stats


def summaries(stats: dict[str, Any]) -> list[SourceLengthStats]:
    """The per-source rows of a :func:`token_lengths` result, then the total row."""
    return [SourceLengthStats.from_dict(d) for d in [*stats["sources"], stats["total"]]]


def _lines_or_path(
    records: str | Path | Sequence[str] | Sequence[dict[str, Any]],
) -> tuple[list[str] | None, Path | None]:
    if isinstance(records, (str, Path)):
        return None, Path(records)
    return [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records], None


def _u32(raw: bytes) -> npt.NDArray[np.uint32]:
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32, copy=False)


def _u64(raw: bytes) -> npt.NDArray[np.uint64]:
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64, copy=False)


@dataclass(frozen=True)
class EncodedSupervised:
    """SFT examples, flat: example ``k`` is ``input_ids[offsets[k]:offsets[k+1]]`` with
    ``labels`` alike (``-100`` where no loss is taken); ``indices[k]`` is its record's 0-based
    index in the input; ``rejections`` lists records skipped with ``on_error="skip"``."""

    input_ids: npt.NDArray[np.uint32]
    labels: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.uint64]
    indices: npt.NDArray[np.uint64]
    rejections: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Tokens per example."""
        out: npt.NDArray[np.int64] = np.diff(self.offsets).astype(np.int64)
        return out

    def example(self, k: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]:
        """(input ids, labels) of example ``k``."""
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.input_ids[a:b], self.labels[a:b]


@dataclass(frozen=True)
class EncodedPairs:
    """DPO pairs, flat: pair ``k`` is prompt ``prompt_ids[prompt_offsets[k]:...]`` followed by
    the chosen or the rejected completion (the prompt ids are shared by both)."""

    prompt_ids: npt.NDArray[np.uint32]
    prompt_offsets: npt.NDArray[np.uint64]
    chosen_ids: npt.NDArray[np.uint32]
    chosen_offsets: npt.NDArray[np.uint64]
    rejected_ids: npt.NDArray[np.uint32]
    rejected_offsets: npt.NDArray[np.uint64]
    indices: npt.NDArray[np.uint64]
    rejections: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.prompt_offsets) - 1

    def pair(
        self, k: int
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
        """(prompt, chosen, rejected) ids of pair ``k``."""

        def cut(ids: npt.NDArray[np.uint32], off: npt.NDArray[np.uint64]) -> Any:
            return ids[int(off[k]) : int(off[k + 1])]

        return (
            cut(self.prompt_ids, self.prompt_offsets),
            cut(self.chosen_ids, self.chosen_offsets),
            cut(self.rejected_ids, self.rejected_offsets),
        )


def encode_supervised(
    records: str | Path | Sequence[str] | Sequence[dict[str, Any]],
    tokenizer: str | Path | TokenCounter,
    *,
    template: str = "intern2",
    cutoff_len: int = 1024,
    mask_history: bool = False,
    train_on_prompt: bool = False,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
) -> EncodedSupervised:
    """Token ids and labels of SFT records, exactly as LLaMA-Factory's supervised processor
    builds them (``encode_multiturn`` element by element, the ``infer_seqlen`` turn loop on the
    budget left, ``efficient_eos``, ``mask_history``, ``train_on_prompt``).

    ``records`` is a file (any format :func:`csft_data.read` knows) or a sequence of JSON
    strings / dicts (Alpaca or messages style). Encoding runs in Rust, in parallel. A record
    that cannot be rendered raises :class:`ParseError` naming the record and field
    (``on_error="raise"``) or is listed in ``rejections`` (``"skip"``)."""
    lines, path = _lines_or_path(records)
    d = _core.encode_supervised(
        _counter(tokenizer),
        lines=lines,
        path=path,
        template=template,
        cutoff_len=cutoff_len,
        mask_history=mask_history,
        train_on_prompt=train_on_prompt,
        system=system,
        bos_token=bos_token,
        eos_token=eos_token,
        format=format,
        encoding=encoding,
        on_error=on_error,
    )
    return EncodedSupervised(
        input_ids=_u32(d["input_ids"]),
        labels=np.frombuffer(d["labels"], dtype="<i4").astype(np.int32, copy=False),
        offsets=_u64(d["input_offsets"]),
        indices=_u64(d["indices"]),
        rejections=d["rejections"],
    )


def encode_pairwise(
    records: str | Path | Sequence[str] | Sequence[dict[str, Any]],
    tokenizer: str | Path | TokenCounter,
    *,
    template: str = "intern2",
    cutoff_len: int = 1024,
    system: str | None = None,
    bos_token: str | None = None,
    eos_token: str | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
) -> EncodedPairs:
    """Prompt, chosen and rejected ids of ranking records (``chosen``/``rejected`` strings or
    messages, Alpaca or messages style), as LLaMA-Factory's pairwise processor builds them:
    the prompt is encoded once and shared, ``infer_seqlen(prompt, max(chosen, rejected),
    cutoff_len)`` truncates both. See :func:`encode_supervised` for the other arguments."""
    lines, path = _lines_or_path(records)
    d = _core.encode_pairwise(
        _counter(tokenizer),
        lines=lines,
        path=path,
        template=template,
        cutoff_len=cutoff_len,
        system=system,
        bos_token=bos_token,
        eos_token=eos_token,
        format=format,
        encoding=encoding,
        on_error=on_error,
    )
    return EncodedPairs(
        prompt_ids=_u32(d["prompt_ids"]),
        prompt_offsets=_u64(d["prompt_offsets"]),
        chosen_ids=_u32(d["chosen_ids"]),
        chosen_offsets=_u64(d["chosen_offsets"]),
        rejected_ids=_u32(d["rejected_ids"]),
        rejected_offsets=_u64(d["rejected_offsets"]),
        indices=_u64(d["indices"]),
        rejections=d["rejections"],
    )
