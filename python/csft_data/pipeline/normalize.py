"""The normalize stage of ``csft-data build``: script conversion (e.g. t2s) and text clean-up
of every field of every record, per source (``csft_data.normalize``), configured by
:class:`~csft_data.pipeline.config.NormalizeConfig`. It removes no record except unreadable
ones (kept as evidence); duplicates are the next stage's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csft_data.normalize import normalize_file
from csft_data.pipeline.cache import StageCache, StageResult
from csft_data.pipeline.recipe import Recipe


def normalize_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Script conversion (e.g. t2s) and text clean-up of every field, per source."""
    cfg = recipe.normalize

    def work(d: Path) -> dict[str, Any]:
        sources = {}
        for s in recipe.sources:
            q = d / f"{s.name}.rejected.jsonl"
            summary = normalize_file(
                up.file(s.name),
                d / f"{s.name}.jsonl",
                on_error="skip",
                quarantine=q,
                convert=cfg.convert,
                unicode=cfg.unicode,
                newlines=cfg.newlines,
                control=cfg.control,
                whitespace=cfg.whitespace,
            )
            sources[s.name] = {
                "in": summary.records_in,
                "out": summary.written,
                "removed": {"rejected: unreadable record": summary.rejected}
                if summary.rejected
                else {},
            }
        return {"sources": sources}

    return cache.run("normalize", {"up": up.fingerprint, "config": cfg.to_json()}, work, up)
