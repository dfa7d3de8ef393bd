"""The decontaminate stage of ``csft-data build``: removes training records that contain an
evaluation item (character n-gram overlap on the normalized question; ``csft_data.decontam``),
configured by :class:`~csft_data.pipeline.config.DecontamConfig` and the recipe's evaluation
files (converted by their adapter to questions only, here). ``hits.jsonl`` names the evaluation
file and item of each removal. It never changes the evaluation files.

Locally, one call checks every source against one evaluation index. Under ``[engine] kind =
"ray"`` each source is one Ray task (``ray_engine.run_each``) that makes the same call on that
source's file alone (the evaluation files, converted here first, are read by every task); the
driver concatenates the tasks' hits and rejections in source order and counts the distinct
evaluation items hit from their hits, so both engines write the same bytes and stats.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csft_data import ray_engine
from csft_data.adapters import adapters, convert
from csft_data.decontam import decontaminate
from csft_data.pipeline.cache import (
    StageCache,
    StageResult,
    concatenate,
    file_identity,
    pass_through,
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
        options: dict[str, Any] = {
            "fields": list(cfg.fields),
            "ngram": cfg.ngram,
            "threshold": cfg.threshold,
            "on_error": "skip",
            "eval_on_error": recipe.on_error,
        }
        if recipe.engine.kind == "ray":
            stats = _per_source(recipe, [(n, up.file(n)) for n in names], d, evals, options)
        else:
            stats = decontaminate(
                [up.file(n) for n in names],
                None,
                evals,
                outputs=[d / f"{n}.jsonl" for n in names],
                report=d / "hits.jsonl",
                quarantine=d / "rejected.jsonl",
                **options,
            )
        if stats["eval_no_text"]:
            left_out["no question text"] = stats["eval_no_text"]
        if stats["eval_rejected"]:
            left_out["malformed rows"] = stats["eval_rejected"]
        per = {s["source"]: s for s in stats["sources"]}
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


#: The figures of the evaluation set that every per-source task computes alike.
_EVAL_FIGURES = ("eval_items", "eval_unchecked", "eval_no_text", "eval_rejected")


def _per_source(
    recipe: Recipe | PretrainRecipe,
    sources: list[tuple[str, Path]],
    d: Path,
    evals: dict[str | Path, list[str] | None],
    options: dict[str, Any],
) -> dict[str, Any]:
    """The stage's call, one Ray task per source (``[engine] kind = "ray"``): each writes its
    kept records, hits and rejections into a part folder (which takes the temporary files of a
    task whose worker died, too); the kept records are moved into ``<source>.jsonl``, the
    others concatenated in source order into ``hits.jsonl`` and ``rejected.jsonl``, as the
    local call writes them. Returns the stats the local call returns. ``eval_items_hit``
    (distinct items, not a sum: two sources may hit one item) is counted from the tasks' hits:
    the core marks an item hit exactly when a hit line names it (its index in its file); it
    does not return the items themselves."""
    parts = d / ".parts"
    parts.mkdir()
    calls = [
        (
            ([file], parts / f"{n}.jsonl", evals),
            {
                **options,
                "report": parts / f"{n}.hits.jsonl",
                "quarantine": parts / f"{n}.rejected.jsonl",
            },
        )
        for n, file in sources
    ]
    engine = recipe.engine
    results = ray_engine.run_each(
        decontaminate,
        calls,
        kind=engine.kind,
        address=engine.address,
        cpus_per_task=engine.cpus_per_task,
    )
    first = results[0]
    for r in results[1:]:
        if any(r[k] != first[k] for k in _EVAL_FIGURES):
            raise RuntimeError("decontaminate: the tasks read the evaluation files differently")
    hit: set[tuple[str, int]] = set()
    for n, _ in sources:
        with (parts / f"{n}.hits.jsonl").open(encoding="utf-8") as f:
            for line in f:
                h = json.loads(line)
                hit.add((h["eval_file"], h["eval_index"]))
    for n, _ in sources:
        (parts / f"{n}.jsonl").replace(d / f"{n}.jsonl")
    for name in ("hits", "rejected"):
        concatenate([parts / f"{n}.{name}.jsonl" for n, _ in sources], d / f"{name}.jsonl")
    shutil.rmtree(parts)
    return {
        "sources": [s for r in results for s in r["sources"]],
        **{k: first[k] for k in _EVAL_FIGURES},
        "eval_items_hit": len(hit),
    }


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
