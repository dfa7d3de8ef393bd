"""``csft-data build``: a recipe → deduplicated, decontaminated Alpaca train/val splits.

Stages (each cached by fingerprint under ``<dir>/.cache/``): adapt → normalize → dedup (per
source, then across sources) → decontaminate → diversify (only with ``[diversify]``: SF-Med's
generated instructions) → lengths (template + cut-off policy) → mixture → split (by dedup
cluster and conversation) → write. The final write puts ``train``/``val``
(JSONL and Parquet), ``dataset_info.json`` (LLaMA-Factory), ``manifest.json``, ``report.html``
with PNG plots, a dataset card (``README.md``) and the per-record evidence of every removal
(``removed/``) into the output folder, all-or-nothing: they are written to a staging folder
first and moved into place only when complete.

A build holds an exclusive lock on its output folder (``<dir>/.lock``, which names the holder)
from start to end: a second build into the same folder fails at once and touches nothing. The
lock goes with the process that holds it, however it ends, so a killed build never blocks the
next one, which clears what the killed one left (staging, half-built stages, temporary files).
A build refuses an output folder where it would overwrite one of its inputs.

This module orchestrates: it runs the stages in order and holds the lock. Each stage is in its
own module (``adapt.py`` … ``split.py``, on the machinery of ``cache.py``), the recipe and the
stages' configuration in ``recipe.py`` and ``config.py``, the final write in ``outputs.py``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from csft_data import ray_engine
from csft_data._core import ConfigError
from csft_data.pipeline.adapt import adapt_stage
from csft_data.pipeline.cache import StageCache, StageResult, fingerprint
from csft_data.pipeline.decontaminate import decontaminate_stage
from csft_data.pipeline.dedup import dedup_stage
from csft_data.pipeline.diversify import GENERATIONS, diversify_stage
from csft_data.pipeline.lengths import lengths_stage
from csft_data.pipeline.mixture import mixture_stage
from csft_data.pipeline.normalize import normalize_stage
from csft_data.pipeline.recipe import Recipe, load_recipe
from csft_data.pipeline.split import split_stage
from csft_data.write import PathArg, remove_stale_temps, same_file

STAGES = (
    "adapt",
    "normalize",
    "dedup",
    "decontaminate",
    "diversify",
    "lengths",
    "mixture",
    "split",
)

#: What a build writes into its output folder (top-level names): an input there would be lost.
OUTPUT_NAMES = (
    "train.jsonl",
    "val.jsonl",
    "train.parquet",
    "val.parquet",
    "dataset_info.json",
    "manifest.json",
    "report.html",
    "plots",
    "README.md",
    "removed",
    "timings.json",
    ".cache",
    ".staging",
    ".lock",
)


class OutputLocked(ConfigError):
    """Another build is running in the output folder."""


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


def plan(recipe: Recipe) -> list[str]:
    """What a build would do (``--dry-run``): sources with their files, and the stages."""
    lines = [f"recipe → {recipe.out_dir} (seed {recipe.seed})"]
    for s in recipe.sources:
        for p in s.paths:
            size = f"{p.stat().st_size:,} bytes" if p.exists() else "MISSING"
            lines.append(f"  source {s.name:<16} {s.adapter:<16} {p} ({size})")
    lines.append(f"  normalize      {recipe.normalize.to_json()}")
    dd = recipe.dedup
    lines.append(
        f"  dedup          {'off' if not dd.enabled else dd.scope}"
        f" threshold {dd.threshold} on {'+'.join(dd.fields)}"
    )
    ev = ", ".join(f"{e.path.name} ({e.adapter or 'fields'})" for e in recipe.evals) or "none"
    lines.append(f"  decontaminate  against {ev}")
    if recipe.diversify is not None:
        dv = recipe.diversify
        what = dv.instructions or f"{dv.generator}, {dv.target} per scenario"
        lines.append(f"  diversify      {'+'.join(dv.scenarios)} from {what} as {dv.placement}")
    if recipe.lengths:
        ln = recipe.lengths
        lines.append(f"  lengths        {ln.template} cutoff {ln.cutoff_len} policy {ln.policy}")
    else:
        lines.append("  lengths        (no [lengths]: not counted)")
    lines.append(f"  mixture        {recipe.mixture.to_json()}")
    lines.append(f"  split          {recipe.split.to_json()}")
    return lines


def recipe_inputs(r: Recipe) -> list[PathArg]:
    """Every file a build of ``r`` reads, with what it is (for messages)."""
    files: list[PathArg] = [("the recipe", r.path)]
    files += [(f"the file of source {s.name!r}", p) for s in r.sources for p in s.paths]
    files += [("the [decontaminate] eval file", e.path) for e in r.evals]
    if r.lengths is not None:
        files.append(("the [lengths] tokenizer", Path(r.lengths.tokenizer)))
    if r.diversify is not None:
        for key in ("instructions", "seeds", "terms"):
            path = getattr(r.diversify, key)
            if path is not None:
                files.append((f"the [diversify] {key} file", Path(path)))
    return files


def check_build(r: Recipe) -> None:
    """What a build checks before it writes anything: the sources and evaluation files exist,
    and the output folder is none of the inputs and would not overwrite one (an input at one
    of :data:`OUTPUT_NAMES` in it, or under one)."""
    for s in r.sources:
        for p in s.paths:
            if not p.is_file():
                raise FileNotFoundError(2, f"source {s.name!r}: no such file", str(p))
    for e in r.evals:
        if not e.path.is_file():
            raise FileNotFoundError(2, "[decontaminate] eval: no such file", str(e.path))
    for what, path in recipe_inputs(r)[1:]:
        if what.startswith("the [diversify]") and path is not None and not Path(path).is_file():
            raise FileNotFoundError(2, f"{what}: no such file", str(path))
    out = r.out_dir
    for what, given in recipe_inputs(r):
        if given is None:
            continue
        src = Path(given)
        if same_file(out, src):
            raise ConfigError(
                f"output folder {out} would overwrite {what} {src} (the same file, "
                f"{src.resolve()}); nothing was written"
            )
        for name in OUTPUT_NAMES:
            target = out / name
            if same_file(src, target) or src.resolve().is_relative_to(target.resolve()):
                raise ConfigError(
                    f"output folder {out} would overwrite {what} {src}: the build writes "
                    f"{target}; nothing was written"
                )


#: Output folders this process holds the lock of: resolved path → (fd, depth, thread).
_HELD: dict[Path, tuple[int, int, int]] = {}


def _holder(fd: int) -> dict[str, Any]:
    """What the lock file says of its holder (it may be writing it just now: a few tries)."""
    for _ in range(25):
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict):
            return info
        time.sleep(0.02)
    return {}


@contextmanager
def output_lock(out: str | Path) -> Iterator[None]:
    """Holds the exclusive lock of the output folder ``out`` (created if missing): a
    non-blocking ``flock`` of ``<out>/.lock``, which names the holder (pid, start time,
    host). Raises :class:`OutputLocked`, naming the holder, when another process (or thread)
    holds it; re-entrant within one thread. The lock ends with the process, however it ends."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    me = threading.get_ident()
    held = _HELD.get(key)
    if held is not None and held[2] == me:
        _HELD[key] = (held[0], held[1] + 1, me)
        try:
            yield
        finally:
            fd, depth, _ = _HELD[key]
            _HELD[key] = (fd, depth - 1, me)
        return
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        info = _holder(fd)
        os.close(fd)
        who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started "
        who += str(info.get("started", "?"))
        raise OutputLocked(
            f"{folder}: another build is running in this folder ({who}; lock file {path}); "
            "wait for it to end or build into another folder"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        info = {"pid": os.getpid(), "started": started, "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        _HELD[key] = (fd, 1, me)
        yield
    finally:
        _HELD.pop(key, None)
        with suppress(OSError):
            os.ftruncate(fd, 0)  # released: the file names no holder (and builds are identical)
        os.close(fd)  # closing the last descriptor releases the lock


def clear_leftovers(out: Path) -> list[Path]:
    """What a killed build left in ``out`` (the lock is held: no build is running there): the
    staging folder, half-built stages and temporary files of dead processes."""
    removed = []
    cache = out / ".cache"
    leftovers = [out / ".staging"]
    if cache.is_dir():
        leftovers += [d for d in cache.iterdir() if d.name.endswith(".partial")]
    for d in leftovers:
        if d.is_dir() and not d.is_symlink():
            shutil.rmtree(d)
            removed.append(d)
    return removed + remove_stale_temps(out) + remove_stale_temps(cache)


def _print_notice(text: str) -> None:
    print(f"csft-data: {text}", file=sys.stderr, flush=True)


def build(
    recipe: Recipe | str | Path,
    out_dir: str | Path | None = None,
    *,
    on_stage: Callable[[str, bool], None] | None = None,
    on_notice: Callable[[str], None] | None = _print_notice,
) -> BuildResult:
    """Runs every stage of ``recipe`` (a :class:`Recipe` or a recipe file) and writes the
    outputs into ``out_dir`` (default: the recipe's ``[output] dir``), holding its lock
    (:func:`output_lock`). Stages whose fingerprint is unchanged and whose files verify are
    taken from ``<out_dir>/.cache``. ``on_stage(name, cached)`` is called as each stage
    starts; ``on_notice(text)`` (default: a line on stderr) for a cached stage that cannot be
    used and for leftovers of a killed build that were removed."""
    from csft_data.pipeline.outputs import write_outputs

    r = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, out_dir)
    if out_dir is not None and isinstance(recipe, Recipe):
        r = dataclasses.replace(r, out_dir=Path(out_dir))
    check_build(r)
    out = r.out_dir
    # a Ray started by one stage serves the next ones
    engine: AbstractContextManager[None] = (
        ray_engine.hold() if r.engine.kind == "ray" else nullcontext()
    )
    with output_lock(out), engine:
        for path in clear_leftovers(out):
            if on_notice is not None:
                on_notice(f"removed {path}, left by an interrupted build")
        cache = StageCache(out / ".cache", on_stage, on_notice)
        results = [adapt_stage(cache, r)]
        results.append(normalize_stage(cache, r, results[-1]))
        results.append(dedup_stage(cache, r, results[-1]))
        results.append(decontaminate_stage(cache, r, results[-1]))
        if r.diversify is not None:
            results.append(diversify_stage(cache, r, results[-1]))
        results.append(lengths_stage(cache, r, results[-1]))
        results.append(mixture_stage(cache, r, results[-1]))
        results.append(split_stage(cache, r, results[-1]))
        if on_stage is not None:
            on_stage("write", False)
        manifest = write_outputs(r, results)
        prune_cache(cache.root, {res.dir.name for res in results} | {GENERATIONS})
    return BuildResult(out_dir=out, manifest=manifest, stages=results)


def prune_cache(root: Path, keep: set[str]) -> None:
    """Removes cached stages that this build did not use (older fingerprints)."""
    for d in root.iterdir():
        if d.is_dir() and d.name not in keep:
            shutil.rmtree(d, ignore_errors=True)


def recipe_fingerprint(r: Recipe) -> str:
    return fingerprint({"recipe": r.to_json()})
