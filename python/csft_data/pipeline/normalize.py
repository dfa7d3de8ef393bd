"""The normalize stage of ``csft-data build``: script conversion (e.g. t2s) and text clean-up
of every field of every record, per source (``csft_data.normalize``; one Ray task per source
under ``[engine] kind = "ray"``), configured by
:class:`~csft_data.pipeline.config.NormalizeConfig`. It removes no record except unreadable
ones (kept as evidence); duplicates are the next stage's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from csft_data import ray_engine
from csft_data.normalize import normalize_file
from csft_data.pipeline.cache import StageCache, StageResult
from csft_data.pipeline.recipe import Recipe

if TYPE_CHECKING:
    from csft_data.pretrain.recipe import PretrainRecipe


def normalize_stage(
    cache: StageCache,
    recipe: Recipe | PretrainRecipe,
    up: StageResult,
    fields: tuple[str, ...] | None = None,
) -> StageResult:
    """Script conversion (e.g. t2s) and text clean-up of every field (or of ``fields``, which
    every record must have), per source."""
    cfg = recipe.normalize

    def work(d: Path) -> dict[str, Any]:
        options = {
            "on_error": "skip",
            "convert": cfg.convert,
            "unicode": cfg.unicode,
            "newlines": cfg.newlines,
            "control": cfg.control,
            "whitespace": cfg.whitespace,
            "fields": list(fields) if fields else None,
        }
        names = [s.name for s in recipe.sources]
        calls = [
            ((up.file(n), d / f"{n}.jsonl"), {**options, "quarantine": d / f"{n}.rejected.jsonl"})
            for n in names
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
        for n, summary in zip(names, summaries, strict=True):
            sources[n] = {
                "in": summary.records_in,
                "out": summary.written,
                "removed": {"rejected: unreadable record": summary.rejected}
                if summary.rejected
                else {},
            }
        return {"sources": sources}

    key: dict[str, Any] = {"up": up.fingerprint, "config": cfg.to_json()}
    if fields:  # SFT recipes keep their fingerprints
        key["fields"] = list(fields)
    return cache.run("normalize", key, work, up)
