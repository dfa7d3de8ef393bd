"""The split stage of ``csft-data build``: train/val labels (``labels.bin``, one byte per
record of the mixture's files in source order), as numpy arrays over record indices; the final
write (``outputs.py``) routes the records by them.

Records are grouped so that near-duplicates and the turns of one conversation never straddle
train and val: a group joins the records of one conversation (same source and ``id``) and the
clusters a second, looser dedup pass finds (``group_threshold`` of
:class:`~csft_data.pipeline.config.SplitConfig`, on the dedup stage's fields and sketch). Groups
go to val in a seeded hash order (``mixture.seeded_order``) until ``val_ratio`` of the records
is reached. The split removes no record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data.dedup import dedup_files
from csft_data.pipeline.cache import StageCache, StageResult
from csft_data.pipeline.mixture import seeded_order
from csft_data.pipeline.recipe import Recipe


class _UnionFind:
    def __init__(self, parent: npt.NDArray[np.int64]) -> None:
        self.parent = parent

    def find(self, a: int) -> int:
        p = self.parent
        root = a
        while p[root] != root:
            root = int(p[root])
        while p[a] != root:
            p[a], a = root, int(p[a])
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo

    def roots(self) -> npt.NDArray[np.int64]:
        p = self.parent
        while True:
            q = p[p]
            if np.array_equal(q, p):
                return p
            p = q


def conversation_parents(files: Sequence[Path]) -> npt.NDArray[np.int64]:
    """For the records of ``files`` (concatenated), the index of the first record of the same
    conversation (same file and ``id``); a record without an ``id`` is its own."""
    import polars as pl

    frames = []
    for k, f in enumerate(files):
        if f.stat().st_size == 0:
            continue
        frames.append(
            pl.scan_ndjson(f, schema={"id": pl.Utf8})
            .select(pl.col("id"))
            .with_columns(pl.lit(k).alias("file"))
            .collect()
        )
    if not frames:
        return np.zeros(0, dtype=np.int64)
    df = pl.concat(frames).with_row_index("i")
    first = df.group_by(["file", "id"]).agg(pl.col("i").min().alias("first"))
    joined = df.join(first, on=["file", "id"], how="left").sort("i")
    firsts = joined["first"].fill_null(joined["i"]).to_numpy().astype(np.int64)
    return firsts


def split_labels(
    files: Sequence[Path],
    names: Sequence[str],
    counts: Sequence[int],
    clusters: Path | None,
    val_ratio: float,
    seed: int,
) -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
    """0 (train) or 1 (val) per record of ``files`` (concatenated), whole groups at a time."""
    n = int(sum(counts))
    offsets = dict(zip(names, np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist(), strict=True))
    uf = _UnionFind(conversation_parents(files) if n else np.zeros(0, dtype=np.int64))
    near_links = 0
    if clusters is not None and clusters.is_file():
        with clusters.open(encoding="utf-8") as f:
            for line in f:
                c = json.loads(line)
                k = c["keeper"]
                a = offsets[k["source"]] + k["index"]
                for dup in c["duplicates"]:
                    uf.union(a, offsets[dup["source"]] + dup["index"])
                    near_links += 1
    roots = uf.roots()
    labels = np.zeros(n, dtype=np.uint8)
    uniq, sizes = np.unique(roots, return_counts=True)
    target = round(val_ratio * n)
    if target > 0 and len(uniq):
        order = np.argsort(seeded_order(n, seed, 7)[uniq], kind="stable")
        cum = np.cumsum(sizes[order])
        take = order[: int(np.searchsorted(cum, target, side="left")) + 1]
        labels[np.isin(roots, uniq[take])] = 1
    multi = sizes[sizes > 1]
    return labels, {
        "records": n,
        "groups": len(uniq),
        "groups_of_several": len(multi),
        "largest_group": int(sizes.max()) if len(sizes) else 0,
        "near_duplicate_links": near_links,
        "val_target": target,
        "val": int(labels.sum()),
        "train": int(n - labels.sum()),
        "group_sizes": np.bincount(np.minimum(sizes, 64)).tolist() if len(sizes) else [],
    }


def split_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Train/val labels (``labels.bin``, one byte per record of the mixture's files in source
    order) by groups: conversations and near-duplicate clusters at ``group_threshold``."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.split

    def work(d: Path) -> dict[str, Any]:
        files = [up.file(n) for n in names]
        counts = [up.counts(n)["out"] for n in names]
        clusters = None
        if cfg.group_threshold > 0 and sum(counts) > 1:
            clusters = d / "groups.jsonl"
            dedup_files(  # clusters only: no copy of the kept records
                files,
                None,
                clusters=clusters,
                fields=list(recipe.dedup.fields),
                scope="both",
                threshold=cfg.group_threshold,
                sketch=recipe.dedup.sketch,
                on_error="skip",
            )
        labels, info = split_labels(files, names, counts, clusters, cfg.val_ratio, recipe.seed)
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
    }
    return cache.run("split", key, work, up)
