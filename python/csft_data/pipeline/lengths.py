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
from csft_data.lengths import NOT_COUNTED, token_lengths
from csft_data.pipeline.cache import DROP, StageCache, StageResult, file_identity, pass_through
from csft_data.pipeline.recipe import Recipe


def lengths_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Token lengths under the recipe's tokenizer and chat template, and the cut-off policy:
    ``drop`` removes records longer than ``cutoff_len`` (into ``<source>.over.jsonl``),
    ``truncate`` and ``keep`` keep them (the trainer truncates them with the same rule, which
    the report counts). ``totals.bin`` holds every record's total tokens (u32, sources in
    order; ``NOT_COUNTED`` for unrenderable ones), as the core returns them (arrays)."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.lengths

    def work(d: Path) -> dict[str, Any]:
        if cfg is None:
            return {"sources": pass_through(up, names, d), "counted": False}
        cutoff = cfg.cutoff_len
        stats = token_lengths(
            [up.file(n) for n in names],
            cfg.tokenizer,
            template=cfg.template,
            cutoffs=[cutoff],
            system=cfg.system,
            quarantine=d / "unrenderable.jsonl",
            on_error="skip",
            record_totals=True,
        )
        per = {s["source"]: s for s in stats["sources"]}
        totals = stats.pop("record_totals")
        # the report's length plot reads them back (one u32 per record, sources in order)
        np.concatenate(totals).astype("<u4").tofile(d / "totals.bin")
        sources = {}
        for n, t in zip(names, totals, strict=True):
            total = up.counts(n)["out"]
            if len(t) != total:
                raise RuntimeError(f"lengths: {len(t)} records of {n} counted, {total} expected")
            counted = t != NOT_COUNTED
            over = counted & (t > cutoff)
            labels = np.where(over & (cfg.policy == "drop"), 1, 0).astype(np.uint8)
            labels[~counted] = DROP  # unrenderable records: dropped
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
        return {
            "sources": sources,
            "totals_order": names,  # the sources of totals.bin, in order
            "counted": True,
            "cutoff_len": cutoff,
            **cfg.to_json(),
        }

    key: dict[str, Any] = {"up": up.fingerprint, "config": None if cfg is None else cfg.to_json()}
    if cfg is not None:
        key["tokenizer"] = file_identity(Path(cfg.tokenizer))
        key["files"] = "totals.bin"  # stages of older versions kept tokens.jsonl
    return cache.run("lengths", key, work, up)
