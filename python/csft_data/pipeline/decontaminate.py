"""The decontaminate stage of ``csft-data build``: removes training records that contain an
evaluation item (character n-gram overlap on the normalized question; ``csft_data.decontam``),
configured by :class:`~csft_data.pipeline.config.DecontamConfig` and the recipe's evaluation
files (converted by their adapter to questions only, here). ``hits.jsonl`` names the evaluation
file and item of each removal. It never changes the evaluation files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csft_data.adapters import adapters, convert
from csft_data.decontam import decontaminate
from csft_data.pipeline.cache import (
    StageCache,
    StageResult,
    file_identity,
    pass_through,
    split_by_source,
)
from csft_data.pipeline.recipe import Recipe

if TYPE_CHECKING:
    from csft_data.pretrain.recipe import PretrainRecipe


def decontaminate_stage(
    cache: StageCache, recipe: Recipe | PretrainRecipe, up: StageResult
) -> StageResult:
    """Removes training records that contain an evaluation item (char n-gram overlap on the
    normalized question); ``hits.jsonl`` names the evaluation file and item of each."""
    names = [s.name for s in recipe.sources]
    styles = {a["name"]: a["style"] for a in adapters()}
    cfg = recipe.decontaminate

    def work(d: Path) -> dict[str, Any]:
        if not recipe.evals:
            return {"sources": pass_through(up, names, d), "evals": []}
        evals: dict[str | Path, list[str] | None] = {}
        described = []
        originals: dict[str, str] = {}
        left_out: dict[str, int] = {}
        (d / "evals").mkdir()
        for j, e in enumerate(recipe.evals):
            path, fields = e.path, list(e.fields) if e.fields else None
            if e.adapter is not None:
                path = d / "evals" / f"{j}-{e.adapter}-{e.path.stem}.jsonl"
                # Only each item's question and options are checked: an item with an empty or
                # unusable answer is still used; one without question text is left out.
                got = convert(
                    e.adapter,
                    [e.path],
                    path,
                    questions_only=True,
                    on_error=recipe.on_error,
                    quarantine=d / "evals" / f"{j}-{e.adapter}-{e.path.stem}.rejected.jsonl",
                )
                for reason, k in got["rejected_by_reason"].items():
                    key = f"{e.path.name}: rejected: {reason}"
                    left_out[key] = left_out.get(key, 0) + k
                for reason, k in got["skipped_by_reason"].items():
                    key = f"{e.path.name}: skipped: {reason}"
                    left_out[key] = left_out.get(key, 0) + k
                if fields is None:
                    # An MCQA item's stem and options are its `input`; the instruction is the
                    # exam boilerplate every converted item shares.
                    mcqa = styles[e.adapter] == "mcqa"
                    fields = ["input"] if mcqa else ["instruction", "input"]
            evals[path] = fields
            described.append({"file": str(e.path), "adapter": e.adapter, "fields": fields})
            originals[str(path)] = str(e.path)
        stats = decontaminate(
            [up.file(n) for n in names],
            d / "clean.jsonl",
            evals,
            fields=list(cfg.fields),
            ngram=cfg.ngram,
            threshold=cfg.threshold,
            report=d / "hits.jsonl",
            quarantine=d / "rejected.jsonl",
            on_error="skip",
            eval_on_error=recipe.on_error,
        )
        if stats["eval_no_text"]:
            left_out["no question text"] = stats["eval_no_text"]
        if stats["eval_rejected"]:
            left_out["malformed rows"] = stats["eval_rejected"]
        per = {s["source"]: s for s in stats["sources"]}
        split_by_source(d / "clean.jsonl", names, [per[n]["kept"] for n in names], d)
        _name_original_evals(d / "hits.jsonl", originals)
        sources = {}
        for n in names:
            s = per[n]
            removed = {}
            if s["removed"]:
                removed["contains an evaluation item"] = s["removed"]
            if s["rejected"]:
                removed["rejected: no question text"] = s["rejected"]
            sources[n] = {"in": s["records"], "out": s["kept"], "removed": removed}
        return {
            "sources": sources,
            "evals": described,
            "eval_items": stats["eval_items"],
            "eval_items_hit": stats["eval_items_hit"],
            "eval_items_unchecked": stats["eval_unchecked"],
            "eval_items_left_out": dict(sorted(left_out.items())),
        }

    key = {
        "up": up.fingerprint,
        "config": cfg.to_json(),
        "evals": [
            {"file": file_identity(e.path), "adapter": e.adapter, "fields": e.fields}
            for e in recipe.evals
        ],
    }
    return cache.run("decontaminate", key, work, up)


def _name_original_evals(hits: Path, originals: dict[str, str]) -> None:
    """Hits name the user's evaluation file, not its converted copy in the stage folder (whose
    path depends on the output folder)."""
    if not hits.is_file():
        return
    lines = []
    with hits.open(encoding="utf-8") as f:
        for line in f:
            h = json.loads(line)
            h["eval_file"] = originals.get(h["eval_file"], h["eval_file"])
            lines.append(json.dumps(h, ensure_ascii=False, separators=(",", ":")))
    hits.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
