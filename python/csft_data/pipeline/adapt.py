"""The adapt stage of ``csft-data build``: each source's files, as their authors ship them, →
Alpaca records through the source's adapter (``csft_data.adapters``; one Ray task per source
under ``[engine] kind = "ray"``); rejected units are kept as evidence. It reads the recipe's
input files, so its fingerprint holds their identity (path, size, modification time). It
changes no text: normalization is the next stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csft_data import ray_engine
from csft_data.adapters import convert
from csft_data.pipeline.cache import StageCache, StageResult, file_identity
from csft_data.pipeline.recipe import Recipe


def _sources_key(recipe: Recipe) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "adapter": s.adapter,
            "files": [file_identity(p) for p in s.paths],
            "per_conversation": s.per_conversation,
            "templates": s.templates,
            "mapping": s.mapping,
        }
        for s in recipe.sources
    ]


def adapt_stage(cache: StageCache, recipe: Recipe) -> StageResult:
    """Each source's files, as their authors ship them → Alpaca records (``<source>.jsonl``);
    rejected units → ``<source>.rejected.jsonl``. Counts are in input units (records, text
    blocks, rows): ``units = converted + skipped + rejected``; ``out`` is the records written
    (a dialogue unit gives one record per assistant turn)."""

    def work(d: Path) -> dict[str, Any]:
        calls = [
            (
                (s.adapter, list(s.paths), d / f"{s.name}.jsonl"),
                {
                    "templates": s.templates or None,
                    "per_conversation": s.per_conversation,
                    "on_error": recipe.on_error,
                    "quarantine": d / f"{s.name}.rejected.jsonl"
                    if recipe.on_error == "skip"
                    else None,
                    "mapping": s.mapping or None,
                },
            )
            for s in recipe.sources
        ]
        engine = recipe.engine
        stats = ray_engine.run_each(
            convert,
            calls,
            kind=engine.kind,
            address=engine.address,
            cpus_per_task=engine.cpus_per_task,
        )
        sources = {}
        for s, st in zip(recipe.sources, stats, strict=True):
            removed = {f"skipped: {k}": v for k, v in st.get("skipped_by_reason", {}).items()}
            removed.update({f"rejected: {k}": v for k, v in st["rejected_by_reason"].items()})
            sources[s.name] = {
                "in": st["records"],
                "unit": "input units",
                "converted": st["converted"],
                "out": st["written"],
                "removed": removed,
            }
        return {"sources": sources}

    return cache.run("adapt", {"sources": _sources_key(recipe)}, work)
