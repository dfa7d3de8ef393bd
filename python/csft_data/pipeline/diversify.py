"""The diversify stage of ``csft-data build`` (after decontaminate, before lengths, so the token
counts include the instructions): SF-Med's instruction diversification, configured by
:class:`~csft_data.pipeline.config.DiversifyConfig`. It takes the instructions of
``instructions = FILE`` or generates them (``csft_data.diversifier``; every reply cached under
``<dir>/.cache/generations/``, which survives crashes and later builds, so a re-run generates
nothing it already has), then gives each record of the chosen styles one instruction of its
scenario (``diversifier/assign.py``). It removes no record. The generated instructions and
the rejected ones are in the stage's folder (``instructions.jsonl``,
``rejected_instructions.jsonl``); the manifest's ``diversify`` names the set (its sha256 and
counts) and how many records each instruction went to, counted here (later stages may drop or
leave out records: lengths, mixture).

A recipe without ``[diversify]`` does not run this stage at all (``runner.py``), so its outputs
and fingerprints stay as they were.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csft_data.pipeline.cache import StageCache, StageResult, file_identity
from csft_data.pipeline.recipe import Recipe

if TYPE_CHECKING:
    from csft_data.diversifier.assign import AssignCounts

#: The folder under ``<dir>/.cache`` that holds the generator's replies (kept by the pruning).
GENERATIONS = "generations"


def diversify_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Instructions (from the file or generated), then one per record of the chosen styles."""
    # Imported here: csft_data.diversifier reads the stage configurations of this package.
    from csft_data.diversifier.assign import (
        AssignCounts,
        assign_file,
        instructions_digest,
        load_instructions,
    )
    from csft_data.diversifier.generators import GenerationCache, folder_revision, make_generator
    from csft_data.diversifier.run import generate_instructions, generator_options

    cfg = recipe.diversify
    assert cfg is not None, "the runner runs this stage only for a [diversify] table"
    names = [s.name for s in recipe.sources]

    def work(d: Path) -> dict[str, Any]:
        summary: dict[str, Any] = {"placement": cfg.placement, "styles": list(cfg.styles)}
        if cfg.instructions is not None:
            sets = load_instructions(cfg.instructions, cfg.scenarios)
            summary["source"] = {"file": cfg.instructions}
        else:
            assert cfg.generator is not None
            gen = make_generator(cfg.generator, **generator_options(cfg), log=cache.on_notice)
            result = generate_instructions(
                cfg,
                gen,
                seed=recipe.seed,
                cache=GenerationCache(cache.root / GENERATIONS),
                progress=sys.stderr.isatty(),
            )
            _write_jsonl(d / "instructions.jsonl", result.accepted)
            _write_jsonl(d / "rejected_instructions.jsonl", result.rejected)
            sets = result.sets()
            summary["source"] = {"generator": result.model, "scenarios": result.scenarios}
            if not result.reached and cache.on_notice is not None:
                cache.on_notice(f"diversify: the target was not reached: {result.scenarios}")
        summary["sha256"] = instructions_digest(sets)
        summary["instructions"] = {s: len(v) for s, v in sets.items()}
        total = AssignCounts()
        sources = {}
        for n in names:
            c = assign_file(
                up.file(n),
                d / f"{n}.jsonl",
                sets,
                seed=recipe.seed,
                source=n,
                placement=cfg.placement,
                styles=cfg.styles,
                overwrite=cfg.overwrite,
            )
            records = up.counts(n)["out"]
            sources[n] = {"in": records, "out": records, "removed": {}, **_without_lists(c)}
            _merge(total, c)
        return {"sources": sources, "diversify": {**summary, **total.to_json()}}

    key: dict[str, Any] = {"up": up.fingerprint, "config": cfg.to_json()}
    for name in ("instructions", "seeds", "terms"):
        path = getattr(cfg, name)
        if path is not None:
            key[name] = file_identity(Path(path))
    if cfg.instructions is None and cfg.generator is not None:
        kind, _, target = cfg.generator.partition(":")
        if kind != "url":
            key["model"] = folder_revision(Path(target))
    return cache.run("diversify", key, work, up)


def _without_lists(c: AssignCounts) -> dict[str, Any]:
    """A source's counts for the manifest (the per-instruction counts go in once, summed)."""
    out = c.to_json()
    del out["per_instruction"]
    return out


def _merge(total: AssignCounts, c: AssignCounts) -> None:
    for k, v in c.assigned.items():
        total.assigned[k] = total.assigned.get(k, 0) + v
    for k, v in c.untouched.items():
        total.untouched[k] = total.untouched.get(k, 0) + v
    for k, counts in c.per_instruction.items():
        have = total.per_instruction.setdefault(k, [0] * len(counts))
        total.per_instruction[k] = [a + b for a, b in zip(have, counts, strict=True)]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
