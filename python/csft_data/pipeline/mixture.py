"""The mixture stage of ``csft-data build``: how many records each source keeps and which, as
numpy arrays over record indices (no record is held as a Python object; the files are routed
by the Rust partitioner). Records left out go to ``<source>.unselected.jsonl``.

Each source keeps ``min(available, max_records)`` records, unless ``[mixture]``
(:class:`~csft_data.pipeline.config.MixtureConfig`) asks for a distribution: ``total`` records
shared by per-style shares (``style_shares``), then within a style in proportion to
``weight × available^(1/temperature)`` (temperature 1: proportional to size; large: uniform),
water-filled so that no source gives more than it has (its part goes to the others). Without
``total``: with style shares, the largest total every style can fill at its share; without
them, everything available (weights and temperature then change nothing). Which records a
source keeps is decided by a seeded hash of the record's position: deterministic, and without
replacement (nothing is up-sampled). The seeded hash (:func:`seeded_order`) is also the split's
order of groups; the split itself is in ``split.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core
from csft_data.pipeline.cache import StageCache, StageResult
from csft_data.pipeline.config import MixtureConfig
from csft_data.pipeline.recipe import Recipe

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
    sources: Sequence[dict[str, Any]], mixture: MixtureConfig
) -> tuple[list[int], dict[str, Any]]:
    """How many records each source keeps. ``sources``: dicts with ``available``,
    ``max_records`` (or None), ``weight`` and ``style``. Returns the targets and a description
    of how they were derived (for the manifest)."""
    limits = [
        min(s["available"], s["max_records"]) if s["max_records"] is not None else s["available"]
        for s in sources
    ]
    temperature = float(mixture.temperature)
    shares: dict[str, float] = mixture.style_shares
    uniform = all(s["weight"] == 1.0 for s in sources) and temperature == 1.0
    if mixture.total is None and uniform and not shares:
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
    total = mixture.total
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


def mixture_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Per-source caps / weights / temperature / style shares (see the module's docstring);
    records left out go to ``<source>.unselected.jsonl``."""

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
        "config": recipe.mixture.to_json(),
        "seed": recipe.seed,
        "sources": [[s.name, s.max_records, s.weight, s.style] for s in recipe.sources],
    }
    return cache.run("mixture", key, work, up)
