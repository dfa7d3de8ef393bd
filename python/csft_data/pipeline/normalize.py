"""The normalize stage of ``csft-data build``: script conversion (e.g. t2s) and text clean-up
of every field of every record, per source (``csft_data.normalize``; one Ray task per source
under ``[engine] kind = "ray"``), configured by
:class:`~csft_data.pipeline.config.NormalizeConfig`. It removes no record except unreadable
ones (kept as evidence); duplicates are the next stage's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csft_data import ray_engine
from csft_data.normalize import normalize_file
from csft_data.pipeline.cache import StageCache, StageResult
from csft_data.pipeline.recipe import Recipe


def normalize_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Script conversion (e.g. t2s) and text clean-up of every field, per source."""
    cfg = recipe.normalize

    def work(d: Path) -> dict[str, Any]:
        options = {
            "on_error": "skip",
            "convert": cfg.convert,
            "unicode": cfg.unicode,
            "newlines": cfg.newlines,
            "control": cfg.control,
            "whitespace": cfg.whitespace,
        }
        calls = [
            (
                (up.file(s.name), d / f"{s.name}.jsonl"),
                {**options, "quarantine": d / f"{s.name}.rejected.jsonl"},
            )
            for s in recipe.sources
        ]
        engine = recipe.engine
        summaries = ray_engine.run_each(
            normalize_file,
            calls,
            kind=engine.kind,
            address=engine.address,
            cpus_per_task=engine.cpus_per_task,
        )
        sources = {}
        for s, summary in zip(recipe.sources, summaries, strict=True):
            sources[s.name] = {
                "in": summary.records_in,
                "out": summary.written,
                "removed": {"rejected: unreadable record": summary.rejected}
                if summary.rejected
                else {},
            }
        return {"sources": sources}

    return cache.run("normalize", {"up": up.fingerprint, "config": cfg.to_json()}, work, up)
