"""``csft-data build``: a recipe → deduplicated, decontaminated Alpaca train/val splits.

Stages (each cached by fingerprint under ``<dir>/.cache/``): adapt → normalize → dedup (per
source, then across sources) → decontaminate → lengths (template + cut-off policy) → mixture →
split (by dedup cluster and conversation) → write. The final write puts ``train``/``val``
(JSONL and Parquet), ``dataset_info.json`` (LLaMA-Factory), ``manifest.json``, ``report.html``
with PNG plots, a dataset card (``README.md``) and the per-record evidence of every removal
(``removed/``) into the output folder, all-or-nothing: they are written to a staging folder
first and moved into place only when complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csft_data import _core
from csft_data.build.recipe import Recipe, load_recipe
from csft_data.build.select import choose, mixture_targets, split_labels
from csft_data.build.stages import (
    StageCache,
    StageResult,
    adapt_stage,
    decontaminate_stage,
    dedup_stage,
    fingerprint,
    lengths_stage,
    normalize_stage,
)
from csft_data.dedup import dedup_files

STAGES = ("adapt", "normalize", "dedup", "decontaminate", "lengths", "mixture", "split")


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict[str, Any]
    stages: list[StageResult] = field(default_factory=list)

    @property
    def train(self) -> Path:
        return self.out_dir / "train.jsonl"

    @property
    def val(self) -> Path:
        return self.out_dir / "val.jsonl"

    def lines(self) -> list[str]:
        out = []
        cached = {r.name: r.cached for r in self.stages}
        for st in self.manifest["stages"]:
            tot_in = sum(s["in"] for s in st["sources"].values())
            tot_out = sum(s["out"] for s in st["sources"].values())
            tag = " (cached)" if cached.get(st["stage"]) else ""
            out.append(f"{st['stage']:<14} {tot_in:>10,} → {tot_out:>10,}{tag}")
        sp = self.manifest["split"]
        out.append(f"{'split':<14} train {sp['train']:,}, val {sp['val']:,} → {self.out_dir}")
        return out


def mixture_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Per-source caps / weights / temperature / style shares (see ``select.py``); records
    left out go to ``<source>.unselected.jsonl``."""

    def work(d: Path) -> dict[str, Any]:
        infos = [
            {
                "available": up.counts(s.name)["out"],
                "max_records": s.max_records,
                "weight": s.weight,
                "style": s.style,
            }
            for s in recipe.sources
        ]
        targets, how = mixture_targets(infos, recipe.mixture)
        sources = {}
        for k, (s, info, t) in enumerate(zip(recipe.sources, infos, targets, strict=True)):
            keep = choose(info["available"], t, recipe.seed, k)
            labels = np.where(keep, 0, 1).astype(np.uint8)
            _core.partition_jsonl(
                [up.file(s.name)],
                labels.tobytes(),
                [d / f"{s.name}.jsonl", d / f"{s.name}.unselected.jsonl"],
            )
            left = info["available"] - t
            sources[s.name] = {
                "in": info["available"],
                "out": t,
                "removed": {"over the mixture quota": left} if left else {},
                "style": s.style,
            }
        return {"sources": sources, "mixture": how}

    key = {
        "up": up.fingerprint,
        "config": recipe.mixture,
        "seed": recipe.seed,
        "sources": [[s.name, s.max_records, s.weight, s.style] for s in recipe.sources],
    }
    return cache.run("mixture", key, work)


def split_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Train/val labels (``labels.bin``, one byte per record of the mixture's files in source
    order) by groups: conversations and near-duplicate clusters at ``group_threshold``."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.split

    def work(d: Path) -> dict[str, Any]:
        files = [up.file(n) for n in names]
        counts = [up.counts(n)["out"] for n in names]
        clusters = None
        if cfg["group_threshold"] > 0 and sum(counts) > 1:
            clusters = d / "groups.jsonl"
            dedup_files(  # clusters only: no copy of the kept records
                files,
                None,
                clusters=clusters,
                fields=recipe.dedup["fields"],
                scope="both",
                threshold=cfg["group_threshold"],
                sketch=recipe.dedup["sketch"],
                on_error="skip",
            )
        labels, info = split_labels(files, names, counts, clusters, cfg["val_ratio"], recipe.seed)
        (d / "labels.bin").write_bytes(labels.tobytes())
        sources = {}
        start = 0
        for n, c in zip(names, counts, strict=True):
            part = labels[start : start + c]
            start += c
            val = int(part.sum())
            sources[n] = {"in": c, "out": c, "removed": {}, "train": c - val, "val": val}
        return {"sources": sources, "split": info}

    key = {"up": up.fingerprint, "config": cfg, "seed": recipe.seed, "dedup": recipe.dedup}
    return cache.run("split", key, work)


def plan(recipe: Recipe) -> list[str]:
    """What a build would do (``--dry-run``): sources with their files, and the stages."""
    lines = [f"recipe → {recipe.out_dir} (seed {recipe.seed})"]
    for s in recipe.sources:
        for p in s.paths:
            size = f"{p.stat().st_size:,} bytes" if p.exists() else "MISSING"
            lines.append(f"  source {s.name:<16} {s.adapter:<16} {p} ({size})")
    lines.append(f"  normalize      {recipe.normalize}")
    dd = recipe.dedup
    lines.append(
        f"  dedup          {'off' if not dd['enabled'] else dd['scope']}"
        f" threshold {dd['threshold']} on {'+'.join(dd['fields'])}"
    )
    ev = ", ".join(f"{e.path.name} ({e.adapter or 'fields'})" for e in recipe.evals) or "none"
    lines.append(f"  decontaminate  against {ev}")
    if recipe.lengths:
        ln = recipe.lengths
        lines.append(
            f"  lengths        {ln['template']} cutoff {ln['cutoff_len']} policy {ln['policy']}"
        )
    else:
        lines.append("  lengths        (no [lengths]: not counted)")
    lines.append(f"  mixture        {recipe.mixture}")
    lines.append(f"  split          {recipe.split}")
    return lines


def build(
    recipe: Recipe | str | Path,
    out_dir: str | Path | None = None,
    *,
    on_stage: Callable[[str, bool], None] | None = None,
) -> BuildResult:
    """Runs every stage of ``recipe`` (a :class:`Recipe` or a recipe file) and writes the
    outputs into ``out_dir`` (default: the recipe's ``[output] dir``). Stages whose
    fingerprint is unchanged are taken from ``<out_dir>/.cache``."""
    from csft_data.build.outputs import write_outputs

    r = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, out_dir)
    if out_dir is not None and isinstance(recipe, Recipe):
        r = Recipe(**{**r.__dict__, "out_dir": Path(out_dir)})
    for s in r.sources:
        for p in s.paths:
            if not p.is_file():
                raise FileNotFoundError(2, f"source {s.name!r}: no such file", str(p))
    for e in r.evals:
        if not e.path.is_file():
            raise FileNotFoundError(2, "[decontaminate] eval: no such file", str(e.path))
    out = r.out_dir
    out.mkdir(parents=True, exist_ok=True)
    cache = StageCache(out / ".cache", on_stage)
    results = [adapt_stage(cache, r)]
    results.append(normalize_stage(cache, r, results[-1]))
    results.append(dedup_stage(cache, r, results[-1]))
    results.append(decontaminate_stage(cache, r, results[-1]))
    results.append(lengths_stage(cache, r, results[-1]))
    results.append(mixture_stage(cache, r, results[-1]))
    results.append(split_stage(cache, r, results[-1]))
    if on_stage is not None:
        on_stage("write", False)
    manifest = write_outputs(r, results)
    _prune_cache(cache.root, {res.dir.name for res in results})
    return BuildResult(out_dir=out, manifest=manifest, stages=results)


def _prune_cache(root: Path, keep: set[str]) -> None:
    """Removes cached stages that this build did not use (older fingerprints)."""
    for d in root.iterdir():
        if d.is_dir() and d.name not in keep:
            shutil.rmtree(d, ignore_errors=True)


def recipe_fingerprint(r: Recipe) -> str:
    return fingerprint({"recipe": r.to_json()})
