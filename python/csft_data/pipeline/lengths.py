"""The lengths stage of ``csft-data build``: token lengths of every record under the recipe's
tokenizer and chat template (``csft_data.lengths``, the Rust core), and the cut-off policy of
:class:`~csft_data.pipeline.config.LengthsConfig`. Without ``[lengths]`` in the recipe it passes
the records through uncounted. It never truncates a record: with ``truncate`` the trainer does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from csft_data import _core
from csft_data.lengths import token_lengths
from csft_data.pipeline.cache import DROP, StageCache, StageResult, file_identity, pass_through
from csft_data.pipeline.recipe import Recipe


def lengths_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Token lengths under the recipe's tokenizer and chat template, and the cut-off policy:
    ``drop`` removes records longer than ``cutoff_len`` (into ``<source>.over.jsonl``),
    ``truncate`` and ``keep`` keep them (the trainer truncates them with the same rule, which
    the report counts). ``tokens.jsonl`` has one line per record (source, index, tokens)."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.lengths

    def work(d: Path) -> dict[str, Any]:
        if cfg is None:
            return {"sources": pass_through(up, names, d), "counted": False}
        import polars as pl

        cutoff = cfg.cutoff_len
        stats = token_lengths(
            [up.file(n) for n in names],
            cfg.tokenizer,
            template=cfg.template,
            cutoffs=[cutoff],
            system=cfg.system,
            buckets=d / "tokens.jsonl",
            quarantine=d / "unrenderable.jsonl",
            on_error="skip",
        )
        per = {s["source"]: s for s in stats["sources"]}
        tokens = pl.read_ndjson(
            d / "tokens.jsonl",
            schema={"source": pl.Utf8, "index": pl.Int64, "total_tokens": pl.Int64},
        )
        sources = {}
        for n in names:
            total = up.counts(n)["out"]
            t = tokens.filter(pl.col("source") == n)
            labels = np.full(total, DROP, dtype=np.uint8)  # unrenderable records: dropped
            over = t["total_tokens"].to_numpy() > cutoff
            idx = t["index"].to_numpy()
            labels[idx] = np.where(over & (cfg.policy == "drop"), 1, 0)
            _core.partition_jsonl(
                [up.file(n)], labels.tobytes(), [d / f"{n}.jsonl", d / f"{n}.over.jsonl"]
            )
            removed = {}
            if per[n]["rejected"]:
                removed["rejected: cannot be rendered"] = per[n]["rejected"]
            n_over = int(over.sum())
            if cfg.policy == "drop" and n_over:
                removed[f"longer than cutoff_len {cutoff}"] = n_over
            sources[n] = {
                "in": total,
                "out": int((labels == 0).sum()),
                "removed": removed,
                "over_cutoff": n_over,
                "tokens": {k: per[n][k] for k in ("mean", "quantiles", "total_tokens")},
            }
        return {"sources": sources, "counted": True, "cutoff_len": cutoff, **cfg.to_json()}

    key: dict[str, Any] = {"up": up.fingerprint, "config": None if cfg is None else cfg.to_json()}
    if cfg is not None:
        key["tokenizer"] = file_identity(Path(cfg.tokenizer))
    return cache.run("lengths", key, work, up)
