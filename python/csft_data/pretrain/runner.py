"""``csft-data pretrain``: a pretraining recipe → packed token shards for continued
pre-training (SF-Med §3.1).

Stages (each cached by fingerprint under ``<dir>/.cache/``, as the SFT build's): documents →
normalize (``text``) → dedup (exact + MinHash-LSH on ``text``, per source then across) →
paragraphs (optional paragraph-level dedup) → quality → decontaminate → tokens → pack (mixture
by category, seeded shuffle, shards). The final write puts the shards (``shard-NNNNN.bin`` +
``.docs.bin``), ``manifest.json``, ``report.html`` with its plots (``report.py``) and the
evidence of every removal (``removed/``) into the output folder, through a staging folder, under
the output folder's lock (:func:`csft_data.pipeline.runner.output_lock`).

Every document is accounted for in the manifest: per source, the documents read = kept +
removed by stage and reason; the packed tokens per source and category, and the epochs.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from csft_data import __version__
from csft_data._core import ConfigError
from csft_data.pipeline.cache import StageCache, StageResult, fingerprint, link_or_copy
from csft_data.pipeline.decontaminate import decontaminate_stage
from csft_data.pipeline.dedup import dedup_stage
from csft_data.pipeline.normalize import normalize_stage
from csft_data.pipeline.outputs import publish
from csft_data.pipeline.runner import clear_leftovers, output_lock, prune_cache
from csft_data.pretrain.recipe import TEXT, PretrainRecipe, load_pretrain_recipe
from csft_data.pretrain.report import write_report
from csft_data.pretrain.stages import (
    documents_stage,
    pack_stage,
    paragraphs_stage,
    quality_stage,
    source_files,
    tokens_stage,
)
from csft_data.write import same_file

STAGES = (
    "documents",
    "normalize",
    "dedup",
    "paragraphs",
    "quality",
    "decontaminate",
    "tokens",
    "pack",
)


@dataclass
class PretrainResult:
    out_dir: Path
    manifest: dict[str, Any]
    stages: list[StageResult]

    def lines(self) -> list[str]:
        """A short human summary."""
        m = self.manifest
        t = m["tokens"]
        out = [
            f"{m['documents']['read']:,} documents read, {m['documents']['kept']:,} kept; "
            f"{t['packed']:,} tokens in {m['sequences']:,} sequences of {m['seq_len']} "
            f"({len(m['shards'])} shards, {t['padding']:,} padding)"
        ]
        for c, v in m["mixture"].items():
            out.append(
                f"  {c}: {v['taken_tokens']:,} of {v['available_tokens']:,} tokens "
                f"({v['epochs']} epochs)"
            )
        return out


def _check(r: PretrainRecipe) -> None:
    """Refuses a build that would write over one of its inputs; checks the inputs exist."""
    inputs: list[Path] = [r.pack.tokenizer] + [e.path for e in r.evals]
    for s in r.sources:
        inputs.extend(source_files(s))
    if not r.pack.tokenizer.is_file():
        raise FileNotFoundError(2, "[pack] tokenizer: no such file", str(r.pack.tokenizer))
    out = r.out_dir
    for src in inputs:
        if same_file(out, src) or src.resolve().is_relative_to(out.resolve()):
            raise ConfigError(
                f"output folder {out} holds the input {src}: it would be overwritten; "
                "nothing was written"
            )


def build_pretrain(
    recipe: PretrainRecipe | str | Path,
    out_dir: str | Path | None = None,
    *,
    on_stage: Callable[[str, bool], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> PretrainResult:
    """Runs every stage of a pretraining recipe (a :class:`PretrainRecipe` or a recipe file)
    and writes the shards and the manifest into ``out_dir`` (default: ``[output] dir``)."""
    r = recipe if isinstance(recipe, PretrainRecipe) else load_pretrain_recipe(recipe, out_dir)
    if out_dir is not None and isinstance(recipe, PretrainRecipe):
        r = replace(r, out_dir=Path(out_dir))
    _check(r)
    out = r.out_dir
    with output_lock(out):
        for path in clear_leftovers(out):
            if on_notice is not None:
                on_notice(f"removed {path}, left by an interrupted build")
        cache = StageCache(out / ".cache", on_stage, on_notice)
        results = [documents_stage(cache, r)]
        results.append(normalize_stage(cache, r, results[-1], fields=(TEXT,)))
        results.append(dedup_stage(cache, r, results[-1]))
        results.append(paragraphs_stage(cache, r, results[-1]))
        results.append(quality_stage(cache, r, results[-1]))
        results.append(decontaminate_stage(cache, r, results[-1]))
        results.append(tokens_stage(cache, r, results[-1]))
        results.append(pack_stage(cache, r, results[-1]))
        if on_stage is not None:
            on_stage("write", False)
        manifest = _write(r, results)
        prune_cache(cache.root, {res.dir.name for res in results})
    return PretrainResult(out_dir=out, manifest=manifest, stages=results)


def _write(r: PretrainRecipe, results: list[StageResult]) -> dict[str, Any]:
    """Shards, evidence and manifest into a staging folder, then into place."""
    out = r.out_dir
    staging = out / ".staging"
    staging.mkdir(parents=True)
    by_name = {res.name: res for res in results}
    pack = by_name["pack"]
    packed = pack.stats["pack"]
    pack_files = pack.digests()
    shards = []
    for s in packed["shards"]:
        for key in ("tokens", "docs"):
            link_or_copy(pack.dir / s[key], staging / s[key])
        # the pack stage's verified record of the file (the cache hashed it when it wrote it)
        shards.append({**s, "sha256": pack_files[s["tokens"]]["sha256"]})
    removed_files = []
    for res in results:
        for f in sorted(res.dir.rglob("*.jsonl")):
            rel = f.relative_to(res.dir)
            evidence = (
                "rejected" in f.name
                or rel.parts[0] == "removed"
                or f.name
                in (
                    "clusters.jsonl",
                    "hits.jsonl",
                )
            )
            if evidence and f.stat().st_size:
                dest = staging / "removed" / res.name / rel.name
                link_or_copy(f, dest)
                removed_files.append(dest.relative_to(staging).as_posix())
    sources: dict[str, Any] = {}
    read = kept = 0
    for s in r.sources:
        removed: dict[str, int] = {}
        for res in results:
            for reason, k in res.stats["sources"][s.name]["removed"].items():
                removed[f"{res.name}: {reason}"] = k
        first = results[0].stats["sources"][s.name]
        n_in = first["in"]
        n_kept = by_name["tokens"].stats["sources"][s.name]["out"]
        if n_in != n_kept + sum(removed.values()):
            raise RuntimeError(f"pretrain: source {s.name}: documents do not add up")
        read, kept = read + n_in, kept + n_kept
        sources[s.name] = {
            "category": s.category,
            "read": n_in,
            "unit": first["unit"],
            "kept": n_kept,
            "removed": removed,
            "tokens": by_name["tokens"].stats["sources"][s.name]["tokens"],
            **{
                k: v
                for k, v in pack.stats["sources"][s.name].items()
                if k not in ("in", "out", "removed")
            },
        }
    sequences = sum(s["sequences"] for s in packed["shards"])
    manifest: dict[str, Any] = {
        "kind": "pretrain",
        "recipe_fingerprint": fingerprint({"recipe": r.to_json()}),
        "seed": r.seed,
        "versions": {
            "csft_data": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "seq_len": r.pack.seq_len,
        "dtype": "uint32",
        "tokenizer": str(r.pack.tokenizer),
        "eos": packed["eos"],
        "eos_id": packed["eos_id"],
        "pad": packed["pad"],
        "pad_id": packed["pad_id"],
        "sequences": sequences,
        "shards": shards,
        "documents": {"read": read, "kept": kept, "packed": packed["documents"]},
        "tokens": {"packed": packed["tokens"], "padding": packed["padding"]},
        "mixture": pack.stats["mixture"],
        "sources": sources,
        "stages": {res.name: {"checksum": res.checksum} for res in results},
        "removed_files": removed_files,
        "recipe": r.to_json(),
    }
    (staging / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    write_report(staging, manifest, results)
    for old in out.glob("shard-*.bin"):
        old.unlink()
    publish(staging, out)
    return manifest
