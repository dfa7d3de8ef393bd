"""Mixture and split of ``csft-data build``, as numpy arrays over record indices (no record is
held as a Python object; the files are routed by the Rust partitioner).

Mixture: each source keeps ``min(available, max_records)`` records, unless ``[mixture]`` asks
for a distribution: ``total`` records shared by per-style shares (``style_shares``), then within
a style in proportion to ``weight × available^(1/temperature)`` (temperature 1: proportional to
size; large: uniform), water-filled so that no source gives more than it has (its part goes
to the others). Without ``total``: with style shares, the largest total every style can fill at
its share; without them, everything available (weights and temperature then change nothing).
Which records a source keeps is decided by a seeded hash of the record's position:
deterministic, and without replacement (nothing is up-sampled).

Split: records are grouped so that near-duplicates and the turns of one conversation never
straddle train and val: a group joins the records of one conversation (same source and ``id``)
and the clusters a second, looser dedup pass finds (``group_threshold``). Groups go to val in a
seeded hash order until ``val_ratio`` of the records is reached.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_M1, _M2, _GOLD = (
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
    np.uint64(0x9E3779B97F4A7C15),
)


def splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The splitmix64 finalizer, element-wise (a good 64-bit mix; wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        z = x + _GOLD
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        out: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
        return out


def seeded_order(n: int, seed: int, salt: int) -> npt.NDArray[np.uint64]:
    """One pseudo-random 64-bit key per index ``0..n`` for a seed and a salt."""
    base = np.uint64((seed * 0x100000001B3 + salt) & 0xFFFFFFFFFFFFFFFF)
    return splitmix64(np.arange(n, dtype=np.uint64) ^ splitmix64(np.array([base]))[0])


def _water_fill(budget: int, props: Sequence[float], limits: Sequence[int]) -> list[int]:
    """Integer allocation of ``budget`` in proportion to ``props``, no share above its limit;
    what a saturated share cannot take goes to the others. Remainders by largest fraction,
    ties by position (deterministic)."""
    alloc = [0.0] * len(props)
    fixed = [p <= 0 or lim <= 0 for p, lim in zip(props, limits, strict=True)]
    left = float(budget)
    while True:
        active = [i for i, f in enumerate(fixed) if not f]
        weight = sum(props[i] for i in active)
        if not active or weight <= 0 or left <= 0:
            break
        saturated = [i for i in active if left * props[i] / weight >= limits[i]]
        if not saturated:
            for i in active:
                alloc[i] = left * props[i] / weight
            break
        for i in saturated:
            alloc[i] = float(limits[i])
            fixed[i] = True
            left -= limits[i]
    out = [min(math.floor(a + 1e-9), lim) for a, lim in zip(alloc, limits, strict=True)]
    short = min(budget, sum(limits)) - sum(out)
    order = sorted(range(len(out)), key=lambda i: (-(alloc[i] - out[i]), i))
    for i in order:
        if short <= 0:
            break
        if out[i] < limits[i] and alloc[i] > out[i]:
            out[i] += 1
            short -= 1
    return out


def mixture_targets(
    sources: Sequence[dict[str, Any]], mixture: dict[str, Any]
) -> tuple[list[int], dict[str, Any]]:
    """How many records each source keeps. ``sources``: dicts with ``available``,
    ``max_records`` (or None), ``weight`` and ``style``. Returns the targets and a description
    of how they were derived (for the manifest)."""
    limits = [
        min(s["available"], s["max_records"]) if s["max_records"] is not None else s["available"]
        for s in sources
    ]
    temperature = float(mixture["temperature"])
    shares: dict[str, float] = mixture["style_shares"]
    uniform = all(s["weight"] == 1.0 for s in sources) and temperature == 1.0
    if mixture["total"] is None and uniform and not shares:
        return limits, {"rule": "min(available, max_records) per source", "total": sum(limits)}
    raw = [s["weight"] * (s["available"] ** (1.0 / temperature)) for s in sources]
    styles = sorted({s["style"] for s in sources})
    if shares:
        listed = {k: v for k, v in shares.items() if k in styles}
        norm = sum(listed.values()) or 1.0
        style_share = {st: listed.get(st, 0.0) / norm for st in styles}
    else:
        style_share = {st: 1.0 for st in styles}
    # Global proportion of each source: its style's share × its share inside the style.
    props = []
    for s, r in zip(sources, raw, strict=True):
        inside = sum(r2 for s2, r2 in zip(sources, raw, strict=True) if s2["style"] == s["style"])
        props.append(style_share[s["style"]] * (r / inside if inside > 0 else 0.0))
    if not shares:
        total_raw = sum(raw) or 1.0
        props = [r / total_raw for r in raw]
    total = mixture["total"]
    rule = "total shared by style shares, then weight × available^(1/temperature)"
    if total is None:
        if shares:
            # The largest total every style can fill at its share (a small source inside a
            # style does not bind: the style's other sources take its part).
            total = int(
                min(
                    (
                        sum(lim for s, lim in zip(sources, limits, strict=True) if s["style"] == st)
                        / sh
                        for st, sh in style_share.items()
                        if sh > 0
                    ),
                    default=0,
                )
            )
            rule += "; total: the largest that every style can fill at its share"
        else:
            total = sum(limits)
            rule += "; total: everything available (weights matter only with a smaller total)"
    targets: list[int] = []
    if shares:
        targets = [0] * len(sources)
        for st in styles:
            idx = [i for i, s in enumerate(sources) if s["style"] == st]
            budget = round(total * style_share[st])
            for i, t in zip(
                idx,
                _water_fill(budget, [props[i] for i in idx], [limits[i] for i in idx]),
                strict=True,
            ):
                targets[i] = t
    else:
        targets = _water_fill(total, props, limits)
    return targets, {
        "rule": rule,
        "total": sum(targets),
        "asked_total": total,
        "temperature": temperature,
        "style_shares": style_share,
        "proportions": [round(p, 6) for p in props],
    }


def choose(available: int, target: int, seed: int, source_index: int) -> npt.NDArray[np.bool_]:
    """The ``target`` records of ``available`` a source keeps: the lowest seeded hash keys."""
    keep = np.zeros(available, dtype=bool)
    if target >= available:
        keep[:] = True
    elif target > 0:
        keys = seeded_order(available, seed, 1_000_003 * (source_index + 1))
        keep[np.argpartition(keys, target - 1)[:target]] = True
    return keep


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
