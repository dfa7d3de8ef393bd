"""The lengths stage of ``csft-data build``: token lengths of every record under the recipe's
tokenizer and chat template (``csft_data.lengths``, the Rust core), and the cut-off policy of
:class:`~csft_data.pipeline.config.LengthsConfig`. Without ``[lengths]`` in the recipe it passes
the records through uncounted. It never truncates a record: with ``truncate`` the trainer does.

Locally, one call counts every source (one tokenizer load); under ``[engine] kind = "ray"``
each source is one Ray task (``ray_engine.run_each``) that counts that source's file alone
(``cpus_per_task`` threads) and routes its records, and the driver writes ``totals.bin`` and
the rejections from the tasks' arrays and parts in source order: the same bytes either way
(a source's counts and statistics depend on its own records only).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core, ray_engine
from csft_data.lengths import NOT_COUNTED, token_lengths
from csft_data.pipeline.cache import (
    DROP,
    StageCache,
    StageResult,
    concatenate,
    file_identity,
    pass_through,
)
from csft_data.pipeline.config import LengthsConfig
from csft_data.pipeline.recipe import Recipe


def lengths_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Token lengths under the recipe's tokenizer and chat template, and the cut-off policy:
    ``drop`` removes records longer than ``cutoff_len`` (into ``<source>.over.jsonl``),
    ``truncate`` and ``keep`` keep them (the trainer truncates them with the same rule, which
    the report counts). ``totals.bin`` holds every record's total tokens (u32, sources in
    order; ``NOT_COUNTED`` for unrenderable ones), as the core returns them (arrays)."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.lengths

    def work(d: Path) -> dict[str, Any]:
        if cfg is None:
            return {"sources": pass_through(up, names, d), "counted": False}
        expected = {n: up.counts(n)["out"] for n in names}
        engine = recipe.engine
        if engine.kind == "ray":
            parts = d / ".parts"
            parts.mkdir()
            calls = [
                (
                    (n, up.file(n), parts, expected[n], cfg, parts / f"{n}.unrenderable.jsonl"),
                    {"num_threads": engine.cpus_per_task},
                )
                for n in names
            ]
            done = ray_engine.run_each(
                count_source,
                calls,
                kind=engine.kind,
                address=engine.address,
                cpus_per_task=engine.cpus_per_task,
            )
            for n in names:  # moved: the temporary files of a task whose worker died stay
                for name in (f"{n}.jsonl", f"{n}.over.jsonl"):
                    (parts / name).replace(d / name)
            concatenate(
                [parts / f"{n}.unrenderable.jsonl" for n in names], d / "unrenderable.jsonl"
            )
            shutil.rmtree(parts)
            sources = {n: source for n, (source, _) in zip(names, done, strict=True)}
            totals = [t for _, t in done]
        else:
            stats = token_lengths(
                [up.file(n) for n in names],
                cfg.tokenizer,
                template=cfg.template,
                cutoffs=[cfg.cutoff_len],
                system=cfg.system,
                quarantine=d / "unrenderable.jsonl",
                on_error="skip",
                record_totals=True,
            )
            per = {s["source"]: s for s in stats["sources"]}
            totals = stats.pop("record_totals")
            sources = {
                n: route_source(n, up.file(n), d, expected[n], cfg, t, per[n])
                for n, t in zip(names, totals, strict=True)
            }
        # the report's length plot reads them back (one u32 per record, sources in order)
        np.concatenate(totals).astype("<u4").tofile(d / "totals.bin")
        return {
            "sources": sources,
            "totals_order": names,  # the sources of totals.bin, in order
            "counted": True,
            "cutoff_len": cfg.cutoff_len,
            **cfg.to_json(),
        }

    key: dict[str, Any] = {"up": up.fingerprint, "config": None if cfg is None else cfg.to_json()}
    if cfg is not None:
        key["tokenizer"] = file_identity(Path(cfg.tokenizer))
        key["files"] = "totals.bin"  # stages of older versions kept tokens.jsonl
    return cache.run("lengths", key, work, up)


def count_source(
    name: str,
    file: Path,
    d: Path,
    expected: int,
    cfg: LengthsConfig,
    quarantine: Path,
    *,
    num_threads: int | None = None,
) -> tuple[dict[str, Any], npt.NDArray[np.uint32]]:
    """One source's part of the stage (a Ray task under ``[engine] kind = "ray"``): the
    counts of its file, ``file`` (its rejections into ``quarantine``), then
    :func:`route_source` into ``d``. Returns the source's stats and its records' totals."""
    stats = token_lengths(
        [file],
        cfg.tokenizer,
        template=cfg.template,
        cutoffs=[cfg.cutoff_len],
        system=cfg.system,
        quarantine=quarantine,
        on_error="skip",
        record_totals=True,
        num_threads=num_threads,
    )
    (per,) = stats["sources"]
    (totals,) = stats["record_totals"]
    return route_source(name, file, d, expected, cfg, totals, per), totals


def route_source(
    name: str,
    file: Path,
    d: Path,
    expected: int,
    cfg: LengthsConfig,
    totals: npt.NDArray[np.uint32],
    per: dict[str, Any],
) -> dict[str, Any]:
    """Routes the records of source ``name`` (``file``, ``expected`` of them) by their
    ``totals`` into ``<name>.jsonl`` (kept) and ``<name>.over.jsonl`` (over the cut-off, with
    ``drop``) in ``d``; unrenderable ones go nowhere (the core quarantined them). Returns the
    source's stats from ``per``, its row of the core's result."""
    n, cutoff = name, cfg.cutoff_len
    if len(totals) != expected:
        raise RuntimeError(f"lengths: {len(totals)} records of {n} counted, {expected} expected")
    counted = totals != NOT_COUNTED
    over = counted & (totals > cutoff)
    labels = np.where(over & (cfg.policy == "drop"), 1, 0).astype(np.uint8)
    labels[~counted] = DROP  # unrenderable records: dropped
    _core.partition_jsonl([file], labels.tobytes(), [d / f"{n}.jsonl", d / f"{n}.over.jsonl"])
    removed = {}
    if per["rejected"]:
        removed["rejected: cannot be rendered"] = per["rejected"]
    n_over = int(over.sum())
    if cfg.policy == "drop" and n_over:
        removed[f"longer than cutoff_len {cutoff}"] = n_over
    return {
        "in": expected,
        "out": int((labels == 0).sum()),
        "removed": removed,
        "over_cutoff": n_over,
        "tokens": {k: per[k] for k in ("mean", "quantiles", "total_tokens")},
    }
