"""The dedup stage of ``csft-data build``: exact + MinHash-LSH near-duplicate removal within
each source, then across sources (``csft_data.dedup``, the Rust core), configured by
:class:`~csft_data.pipeline.config.DedupConfig`; ``clusters.jsonl`` names every duplicate with
the record it duplicates. The looser grouping pass of the split (records that must not straddle
train and val) is in ``split.py``, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csft_data.dedup import dedup_files
from csft_data.pipeline.cache import StageCache, StageResult, pass_through
from csft_data.pipeline.recipe import Recipe

if TYPE_CHECKING:
    from csft_data.pretrain.recipe import PretrainRecipe


def dedup_stage(cache: StageCache, recipe: Recipe | PretrainRecipe, up: StageResult) -> StageResult:
    """Exact + MinHash-LSH near-duplicate removal per source, then across sources (SF-Med);
    ``clusters.jsonl`` lists every duplicate with the record it duplicates."""
    cfg = recipe.dedup
    names = [s.name for s in recipe.sources]

    def work(d: Path) -> dict[str, Any]:
        if not cfg.enabled:
            return {"sources": pass_through(up, names, d), "disabled": True}
        stats = dedup_files(
            [up.file(n) for n in names],
            None,
            outputs=[d / f"{n}.jsonl" for n in names],
            clusters=d / "clusters.jsonl",
            quarantine=d / "rejected.jsonl",
            fields=list(cfg.fields),
            scope=cfg.scope,
            threshold=cfg.threshold,
            num_perm=cfg.num_perm,
            ngram=cfg.ngram,
            keep=cfg.keep,
            priority=names if cfg.keep == "priority" else None,
            sketch=cfg.sketch,
            on_error="skip",
            engine=recipe.engine.kind,
            ray_address=recipe.engine.address,
            ray_cpus_per_task=recipe.engine.cpus_per_task,
            memory_limit=recipe.engine.memory_limit,
            tmp_dir=recipe.engine.tmp_dir,
        )
        per = {s["source"]: s for s in stats["sources"]}
        reasons = _dedup_reasons(d / "clusters.jsonl")
        sources = {}
        for n in names:
            s = per[n]
            removed = dict(sorted(reasons.get(n, {}).items()))
            if s["rejected"]:
                removed["rejected: no dedup text"] = s["rejected"]
            sources[n] = {"in": s["records"], "out": s["kept"], "removed": removed}
        return {
            "sources": sources,
            "lsh": {k: stats[k] for k in ("per_source_scope", "cross_source_scope") if k in stats},
        }

    return cache.run("dedup", {"up": up.fingerprint, "config": cfg.to_json()}, work, up)


def _dedup_reasons(clusters: Path) -> dict[str, dict[str, int]]:
    """Duplicates per source, by kind and scope, read back from the clusters file (once)."""
    out: dict[str, dict[str, int]] = {}
    if not clusters.is_file():
        return out
    with clusters.open(encoding="utf-8") as f:
        for line in f:
            for dup in json.loads(line)["duplicates"]:
                key = f"{dup['kind']} duplicate ({dup['scope']})"
                per = out.setdefault(dup["source"], {})
                per[key] = per.get(key, 0) + 1
    return out
