"""Token-length bucketing: token counts of SFT records under a real Hugging Face tokenizer and a
LLaMA-Factory chat template, and what a cut-off length would do to them.

Counting runs in the Rust core (the ``tokenizers`` crate, in parallel, GIL released) and gives
the same counts as the Python ``tokenizers`` package on the same ``tokenizer.json``. Records are
rendered turn by turn the way LLaMA-Factory's ``encode_multiturn`` encodes them, so the prompt
(system, user turns, history) and the final response are counted apart, and truncation to a
cut-off follows LLaMA-Factory's ``infer_seqlen`` turn loop (without ``mask_history``/packing).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from csft_data import _core
from csft_data._core import TokenCounter
from csft_data.dedup import _source_names

#: The cut-offs reported when none are given (LLaMA-Factory's 1024 of mid-2024, 2048 now).
DEFAULT_CUTOFFS = (512, 1024, 2048)


def template_names() -> list[str]:
    """The built-in chat templates (LLaMA-Factory slots; see ``rust/lengths/template.rs``)."""
    return _core.template_names()


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
    ``quarantine`` if given). Outputs are written atomically.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise _core.ConfigError("lengths needs at least one input file")
    cuts = sorted({int(c) for c in cutoffs})
    if not cuts or cuts[0] <= 0:
        raise _core.ConfigError(f"cut-offs must be positive token counts, got {list(cutoffs)}")
    counter = _counter(tokenizer)
    bar = tqdm(total=0, unit="B", unit_scale=True, desc="lengths") if progress else None

    def report(stage: str, done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

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
            progress=report if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    stats["seconds"] = time.perf_counter() - t0
    return stats


def summaries(stats: dict[str, Any]) -> list[SourceLengthStats]:
    """The per-source rows of a :func:`token_lengths` result, then the total row."""
    return [SourceLengthStats.from_dict(d) for d in [*stats["sources"], stats["total"]]]
