"""The split stage of ``csft-data build``: train/val labels (``labels.bin``, one byte per
record of the mixture's files in source order), as numpy arrays over record indices; the final
write (``outputs.py``) routes the records by them.

Records are grouped so that near-duplicates and the turns of one conversation never straddle
train and val: a group joins the records of one conversation (same source and ``id``) and,
transitively, every pair of records at Jaccard ≥ ``group_threshold`` of
:class:`~csft_data.pipeline.config.SplitConfig` on the dedup stage's fields and shingles
(``_core.group_files``, ``rust/dedup/groups.rs``: LSH banded for recall at the threshold,
pairs verified on the shingle sets). Groups go to val in a seeded hash order
(``mixture.seeded_order``) until ``val_ratio`` of the records is reached. The split removes
no record.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core
from csft_data.pipeline.cache import StageCache, StageResult
from csft_data.pipeline.mixture import seeded_order
from csft_data.pipeline.recipe import Recipe

#: Bumped when the grouping changes what it joins (part of the stage's cache key).
GROUPING = "closure-1"


def split_labels(
    groups: npt.NDArray[np.uint32], val_ratio: float, seed: int
) -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
    """0 (train) or 1 (val) per record, whole groups at a time (``groups``: a group id per
    record, numbered by lowest member)."""
    n = len(groups)
    labels = np.zeros(n, dtype=np.uint8)
    sizes = np.bincount(groups) if n else np.zeros(0, dtype=np.int64)
    target = round(val_ratio * n)
    if target > 0 and len(sizes):
        # Group ids in the seeded order of their lowest members, taken until the target.
        key = seeded_order(n, seed, 7)[_first_members(groups, len(sizes))]
        order = np.argsort(key, kind="stable")
        cum = np.cumsum(sizes[order])
        chosen = np.zeros(len(sizes), dtype=bool)
        chosen[order[: int(np.searchsorted(cum, target, side="left")) + 1]] = True
        labels[chosen[groups]] = 1
    multi = sizes[sizes > 1]
    return labels, {
        "records": n,
        "groups": len(sizes),
        "groups_of_several": len(multi),
        "largest_group": int(sizes.max()) if len(sizes) else 0,
        "val_target": target,
        "val": int(labels.sum()),
        "train": int(n - labels.sum()),
        "group_sizes": np.bincount(np.minimum(sizes, 64)).tolist() if len(sizes) else [],
    }


def _first_members(groups: npt.NDArray[np.uint32], count: int) -> npt.NDArray[np.int64]:
    """The lowest record index of each group (ids are numbered by lowest member)."""
    first = np.full(count, -1, dtype=np.int64)
    new = np.ones(len(groups), dtype=bool)
    new[1:] = groups[1:] > np.maximum.accumulate(groups)[:-1]
    first[groups[new]] = np.flatnonzero(new)
    return first


def group_records(
    files: Sequence[Path], fields: Sequence[str], threshold: float | None, recipe: Recipe
) -> tuple[npt.NDArray[np.uint32], dict[str, Any]]:
    """A group id per record of ``files`` (concatenated) and the grouping's counts."""
    raw, info = _core.group_files(
        [str(f) for f in files],
        fields=list(fields),
        id_field="id",
        threshold=threshold,
        num_perm=recipe.dedup.num_perm,
        ngram=recipe.dedup.ngram,
        sketch=recipe.dedup.sketch,
        format="jsonl",
    )
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32, copy=False), info


def split_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Train/val labels (``labels.bin``, one byte per record of the mixture's files in source
    order) by groups: conversations and near-duplicate clusters at ``group_threshold``."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.split

    def work(d: Path) -> dict[str, Any]:
        files = [up.file(n) for n in names]
        counts = [up.counts(n)["out"] for n in names]
        threshold = cfg.group_threshold if cfg.group_threshold > 0 else None
        groups, grouping = group_records(files, recipe.dedup.fields, threshold, recipe)
        if len(groups) != sum(counts):
            raise RuntimeError(f"split: {len(groups)} records grouped, {sum(counts)} expected")
        labels, info = split_labels(groups, cfg.val_ratio, recipe.seed)
        info["near_duplicate_links"] = grouping["near_links"]
        info["grouping"] = {k: v for k, v in grouping.items() if k not in ("records", "groups")}
        (d / "labels.bin").write_bytes(labels.tobytes())
        sources = {}
        start = 0
        for n, c in zip(names, counts, strict=True):
            part = labels[start : start + c]
            start += c
            val = int(part.sum())
            sources[n] = {"in": c, "out": c, "removed": {}, "train": c - val, "val": val}
        return {"sources": sources, "split": info}

    key = {
        "up": up.fingerprint,
        "config": cfg.to_json(),
        "seed": recipe.seed,
        "dedup": recipe.dedup.to_json(),
        "grouping": GROUPING,
    }
    return cache.run("split", key, work, up)
