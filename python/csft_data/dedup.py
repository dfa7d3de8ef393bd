"""MinHash-LSH stages as numpy arrays, for notebooks and distributed engines (Ray).

The stages are separable (signatures → band keys → buckets → pairs → clusters), so a distributed
run can compute signatures and band keys per batch with these functions and shuffle on the keys.
Everything runs in the Rust core with the GIL released. Same texts and seed → same arrays.
:func:`dedup_files` runs the whole thing over files (the ``csft-data dedup`` command).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core
from csft_data.normalize import default_quarantine_path
from csft_data.progress import StageBar
from csft_data.write import output_format, staged_output

#: ``kinds`` codes: shingled normally / shorter than n (exact match only) / empty.
KIND_NORMAL, KIND_SHORT, KIND_EMPTY = 0, 1, 2


@dataclass(frozen=True)
class MinHashSignatures:
    """``signatures[i]`` is text i's signature (uint32, ``num_perm`` values); ``kinds[i]`` says
    whether it was shingled (0), too short for an n-gram (1, exact match only) or empty (2)."""

    signatures: npt.NDArray[np.uint32]
    kinds: npt.NDArray[np.uint8]

    @property
    def num_perm(self) -> int:
        return int(self.signatures.shape[1])

    def estimate(self, i: int, j: int) -> float:
        """Jaccard estimate of texts i and j (share of equal signature values)."""
        return float(np.mean(self.signatures[i] == self.signatures[j]))


def minhash(
    texts: Sequence[str],
    *,
    num_perm: int = 128,
    ngram: int = 5,
    word_ngram: int = 3,
    mode: str = "auto",
    seed: int = 1,
    sketch: str = "minhash",
) -> MinHashSignatures:
    """MinHash signatures of many texts, in parallel.

    Shingles are character ``ngram``-grams for Chinese text and word ``word_ngram``-grams for
    Latin-script text (``mode="auto"`` decides per text; ``"char"``/``"word"`` force one).
    ``sketch="oph"``: one-permutation hashing with optimal densification, ``num_perm`` bins
    from one hash per shingle (same Jaccard estimate and banding; not comparable with
    ``"minhash"`` signatures).
    """
    values, kinds = _core.minhash_signatures(
        list(texts),
        num_perm=num_perm,
        ngram=ngram,
        word_ngram=word_ngram,
        mode=mode,
        seed=seed,
        sketch=sketch,
    )
    sigs = np.frombuffer(values, dtype="<u4").reshape(len(kinds), num_perm)
    return MinHashSignatures(sigs.astype(np.uint32, copy=False), np.frombuffer(kinds, np.uint8))


def band_keys(signatures: npt.NDArray[np.uint32], bands: int, rows: int) -> npt.NDArray[np.uint64]:
    """One uint64 key per (text, band): texts sharing a key in any band are LSH candidates."""
    sig = np.ascontiguousarray(signatures, dtype="<u4")
    if sig.ndim != 2:
        raise _core.ConfigError(f"signatures must be a 2-D array, got shape {sig.shape}")
    raw = _core.band_keys(sig.tobytes(), sig.shape[1], bands, rows)
    return np.frombuffer(raw, dtype="<u8").reshape(sig.shape[0], bands).astype(np.uint64)


def lsh_params(
    threshold: float = 0.8,
    num_perm: int = 128,
    *,
    bands: int | None = None,
    rows: int | None = None,
    verify: bool = True,
    fp_weight: float | None = None,
    fn_weight: float | None = None,
) -> tuple[int, int]:
    """The (bands, rows) a dedup run uses. With ``verify`` (the default: candidates are checked
    by true Jaccard, so a false positive costs only time) the banding that makes at least 99.5%
    of the pairs at exactly ``threshold`` candidates, with the least false-positive area below
    it (0.8 at 128 permutations: 18 × 6). Without verification, where a false positive is a
    wrong removal, datasketch's ``_optimal_param`` with weights fp 0.1 / fn 0.9 (override with
    ``fp_weight``/``fn_weight``). ``bands``/``rows`` override both."""
    return _core.lsh_params(
        threshold,
        num_perm,
        bands=bands,
        rows=rows,
        verify=verify,
        fp_weight=fp_weight,
        fn_weight=fn_weight,
    )


def _source_names(paths: Sequence[Path]) -> list[str]:
    """File stems, made unique with a numeric suffix where two inputs share one."""
    names: list[str] = []
    for p in paths:
        stem = p.name.split(".")[0] or p.name
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}-{k}", k + 1
        names.append(name)
    return names


_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*([KMGT]?)(I?B)?", re.IGNORECASE)


def check_kept_outputs(
    inputs: Sequence[Path],
    output: str | Path | None,
    outputs: Sequence[str | Path] | None,
    *,
    required: bool = True,
) -> list[Path]:
    """Checks where a stage that keeps a subset of records writes them: ``output`` (one file)
    or ``outputs`` (one JSON Lines file per input, returned), not both, neither an input (and,
    when ``required``, one of them given)."""
    if output is not None and outputs is not None:
        raise _core.ConfigError("give output (one file) or outputs (one per input), not both")
    if output is None and outputs is None and required:
        raise _core.ConfigError("give output (one file) or outputs (one per input)")
    per_source = [Path(p) for p in outputs] if outputs is not None else []
    if outputs is not None:
        if len(per_source) != len(inputs):
            raise _core.ConfigError(f"{len(per_source)} outputs for {len(inputs)} inputs")
        kinds = {str(p): output_format(p) for p in per_source}
        if any(k != "jsonl" for k in kinds.values()):
            raise _core.ConfigError(f"per-source outputs are JSON Lines files, got {kinds}")
    for o in [Path(output)] if output is not None else per_source:
        if any(p.resolve() == o.resolve() for p in inputs):
            raise _core.ConfigError(f"output {o} would overwrite an input")
    return per_source


def parse_size(value: int | str) -> int:
    """Bytes from an int or a size such as ``"2GB"``, ``"512M"``, ``"1.5G"`` or ``"2GiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise _core.ConfigError(f"not a size: {value!r} (e.g. 2GB, 512MB, 1500000000)")
    power = " KMGT".index(m[2].upper() or " ")
    base = 1024 if (m[3] or "").upper() == "IB" else 1000
    return int(float(m[1]) * base**power)


def dedup_files(
    inputs: Sequence[str | Path],
    output: str | Path | None,
    *,
    clusters: str | Path | None = None,
    quarantine: str | Path | None = None,
    fields: Sequence[str] | None = None,
    scope: str = "both",
    threshold: float = 0.8,
    num_perm: int = 128,
    ngram: int = 5,
    word_ngram: int = 3,
    mode: str = "auto",
    seed: int = 1,
    bands: int | None = None,
    rows: int | None = None,
    verify: bool = True,
    keep: str = "first",
    priority: Sequence[str] | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    batch_size: int = 4096,
    progress: bool = False,
    sketch: str = "oph",
    memory_limit: int | str | None = None,
    tmp_dir: str | Path | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    ray_cpus_per_task: int = 1,
    num_threads: int | None = None,
    outputs: Sequence[str | Path] | None = None,
) -> dict[str, Any]:
    """Exact + MinHash-LSH near-duplicate removal over files, each file one source.

    ``sketch``: ``oph`` (the default: one-permutation hashing with optimal densification, the
    same estimate and banding from one hash per shingle, several times faster to sign; see
    ``rust/dedup/oph.rs``) or ``minhash`` (``num_perm`` independent permutations; its estimates
    are better for very short texts, which matters only with ``verify=False``).

    ``scope``: ``per-source``, ``cross-source`` or ``both`` (per source, then across sources,
    as SF-Med does). The dedup text of a record is its ``fields`` (default: all) joined by
    newlines. Writes the kept records to ``output`` in input order (JSON Lines, kept lines
    copied verbatim from JSONL inputs; ``.json``, ``.csv`` or ``.parquet`` by the name, see
    :mod:`csft_data.write`; ``None``: no copy, only the clusters and counts), one line per
    cluster of two or more records to ``clusters`` (keeper, duplicates with source, index, kind,
    similarity, scope), and in skip mode rejected records to ``quarantine``; all atomically.
    ``keep`` picks each cluster's keeper: ``first`` (input order), ``longest`` or ``priority``
    (by source: ``priority`` lists source names, i.e. file stems, most preferred first; unlisted
    sources follow in input order). Returns the stats: per source
    ``records = kept + exact + near + rejected``.

    ``memory_limit`` (bytes, or a size such as ``"2GB"``; default half the memory available):
    a run whose in-memory peak, estimated from the input size, would pass it goes out of core
    (the dedup texts and band keys in temporary files under ``tmp_dir``, default the output's
    folder; memory then stays about 100 bytes a record) with the same result; ``0`` always
    does. A run whose temporary files would not fit on that disk is refused before it starts.
    The stats say which way it ran (``out_of_core``, ``spilled_bytes``).

    ``engine``: ``local`` (the default: this process) or ``ray``: each input file's first pass
    (reading, dedup texts, signatures) runs as a Ray task on the cluster at ``ray_address``
    (default: the running Ray instance, else a local one; ``"auto"``: this machine's cluster)
    with ``ray_cpus_per_task`` cores, writing a sketch into a temporary folder under
    ``tmp_dir`` (which every node must see); the rest runs here from the sketches
    (:mod:`csft_data.ray_engine`). Same inputs and options: the same bytes as ``local``.
    ``num_threads``: the threads this process uses (default: one per core); the result does not
    depend on it.

    ``outputs`` (with ``output`` None): one JSON Lines file per input, in the inputs' order,
    each holding that source's kept records (what ``output`` would hold, cut by source).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise _core.ConfigError("dedup needs at least one input file")
    names = _source_names(paths)
    preferred = list(priority or [])
    unknown = sorted(set(preferred) - set(names))
    if unknown:
        raise _core.ConfigError(f"priority names unknown sources {unknown}; sources: {names}")
    rank = [
        preferred.index(n) if n in preferred else len(preferred) + i for i, n in enumerate(names)
    ]
    out = Path(output) if output is not None else None
    per_source = check_kept_outputs(paths, output, outputs, required=False) or None
    first = out or (per_source[0] if per_source else None)
    if on_error == "skip" and quarantine is None and first is not None:
        quarantine = default_quarantine_path(first)
    bar = StageBar("dedup", enabled=progress)
    report = bar

    start = time.perf_counter()
    options: dict[str, Any] = {
        "clusters": clusters,
        "quarantine": quarantine,
        "fields": list(fields) if fields is not None else None,
        "scope": scope,
        "threshold": threshold,
        "num_perm": num_perm,
        "ngram": ngram,
        "word_ngram": word_ngram,
        "mode": mode,
        "seed": seed,
        "bands": bands,
        "rows": rows,
        "verify": verify,
        "keep": keep,
        "format": format,
        "encoding": encoding,
        "on_error": on_error,
        "batch_size": batch_size,
        "progress": report if progress else None,
        "memory_limit": parse_size(memory_limit) if memory_limit is not None else None,
        "tmp_dir": tmp_dir,
        "source_rank": rank,
        "sketch": sketch,
        "num_threads": num_threads,
    }
    sources: list[tuple[PathLike[str] | str, str]] = list(zip(paths, names, strict=True))
    if engine not in ("local", "ray"):
        raise _core.ConfigError(f"unknown engine {engine!r}: expected local or ray")
    sketch_dir: Path | None = None
    ray_stats: dict[str, Any] | None = None
    engine_scope: AbstractContextManager[None] = nullcontext()
    if engine == "ray":
        from csft_data import ray_engine

        engine_scope = ray_engine.session(ray_address)
    try:
        with engine_scope:
            if engine == "ray":
                here = (first or Path("x")).absolute().parent
                parent = Path(tmp_dir) if tmp_dir is not None else here
                sketch_dir = ray_engine.sketch_folder(parent)
                options["sketches"], ray_stats = ray_engine.sketch_inputs(
                    list(zip(paths, names, strict=True)),
                    options,
                    sketch_dir,
                    address=ray_address,
                    cpus_per_task=ray_cpus_per_task,
                    report=report if progress else None,
                )
                linker = ray_engine.Linker(options["sketches"], ray_cpus_per_task)
                options["link"] = linker
            if per_source is not None:
                stats: dict[str, Any] = _core.dedup_files(
                    sources, None, outputs=per_source, **options
                )
            elif out is None:  # clusters and counts only: the kept records are not copied
                stats = _core.dedup_files(sources, None, **options)
            else:
                with staged_output(out, side_files=(clusters, quarantine)) as target:
                    stats = _core.dedup_files(sources, target, **options)
            if ray_stats is not None:
                ray_stats["link_jobs"] = linker.jobs
                ray_stats["link_seconds"] = round(linker.seconds, 3)
    finally:
        bar.close()
        if sketch_dir is not None:
            ray_engine.remove_folder(sketch_dir)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    stats["output"] = str(out) if out is not None else None
    if per_source is not None:
        stats["outputs"] = [str(p) for p in per_source]
    stats["clusters_file"] = str(clusters) if clusters is not None else None
    stats["quarantine"] = str(quarantine) if quarantine is not None else None
    stats["config"] = {
        "scope": scope,
        "threshold": threshold,
        "num_perm": num_perm,
        "sketch": sketch,
        "ngram": ngram,
        "word_ngram": word_ngram,
        "mode": mode,
        "seed": seed,
        "bands": bands,
        "rows": rows,
        "verify": verify,
        "keep": keep,
        "priority": preferred or None,
        "fields": list(fields) if fields is not None else None,
    }
    stats["engine"] = engine
    if ray_stats is not None:
        stats["ray"] = ray_stats
    return stats
