"""The cached stages of ``csft-data build``: adapt → normalize → dedup → decontaminate →
lengths. Each stage reads the previous stage's per-source JSONL files and writes its own into a
folder named by the stage's fingerprint (its configuration, its upstream fingerprint, the
identity of the files it reads and the csft-data version), so a re-run after a crash or a
change in a later stage reuses every stage that did not change. The record-level work runs in
the Rust core; this module only orchestrates and counts.

Every stage reports, per source, the records in, the records out and why the others left, so
``in = out + removed`` holds exactly at each stage. Mixture and split live in ``select.py``.

A cached stage is verified before it is reused: its ``stage.json`` records the size and sha256
of every file of the stage, the checksum of the stage it read (so the checksums chain down the
stages, as the fingerprints do) and a checksum of all that. A stage whose files or record
changed, or whose upstream stage now holds other data, is recomputed, with a notice naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csft_data import __version__, _core
from csft_data.adapters import adapters, convert
from csft_data.pipeline.recipe import Recipe
from csft_data.decontam import decontaminate
from csft_data.dedup import dedup_files
from csft_data.lengths import token_lengths
from csft_data.normalize import normalize_file

#: The partition label of a record that goes to no output.
DROP = 255


def file_identity(path: Path) -> dict[str, Any]:
    """What a fingerprint knows of an input file: its path, size and modification time."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fingerprint(payload: dict[str, Any]) -> str:
    text = json.dumps({"csft_data": __version__, **payload}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> dict[str, Any]:
    """A file's size and sha256 (read in blocks)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


#: The key of ``stage.json`` that holds the cache's own record (not part of the stats).
CACHE_KEY = "cache"


def _stage_checksum(stats: Any, files: Any, up: Any) -> str:
    text = json.dumps(
        {"stats": stats, "files": files, "up": up}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StageResult:
    """A finished stage: its folder (per-source ``<source>.jsonl`` files and evidence), its
    per-source counts, whether it came from the cache and its checksum (of its counts, its
    files' sha256 and its upstream stage's checksum)."""

    name: str
    fingerprint: str
    dir: Path
    stats: dict[str, Any]
    cached: bool
    checksum: str = ""

    def file(self, source: str) -> Path:
        return self.dir / f"{source}.jsonl"

    def counts(self, source: str) -> dict[str, Any]:
        c: dict[str, Any] = self.stats["sources"][source]
        return c


class StageCache:
    """Runs a stage into ``<root>/<name>-<fingerprint>/`` unless that folder already holds a
    finished run (``stage.json``) that verifies; a stage is built in a temporary folder and
    renamed into place when complete, so a crash never leaves a half stage that looks finished.
    ``on_stage(name, cached)`` is called as each stage starts; ``on_notice(text)`` when a
    cached stage cannot be used and is recomputed."""

    def __init__(
        self,
        root: Path,
        on_stage: Callable[[str, bool], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.root = root
        self.on_stage = on_stage
        self.on_notice = on_notice

    def planned(self, name: str, key: dict[str, Any]) -> tuple[str, bool]:
        """The stage's fingerprint and whether its folder holds a finished run (not verified:
        see :meth:`run`)."""
        fp = fingerprint({"stage": name, **key})
        return fp, (self.root / f"{name}-{fp}" / "stage.json").is_file()

    def run(
        self,
        name: str,
        key: dict[str, Any],
        work: Callable[[Path], dict[str, Any]],
        up: StageResult | None = None,
    ) -> StageResult:
        """The stage ``name`` (``up``: the stage it reads), from the cache when its folder
        verifies, else computed by ``work(folder)``, which returns the stage's stats."""
        fp, _ = self.planned(name, key)
        final = self.root / f"{name}-{fp}"
        up_checksum = up.checksum if up is not None else None
        stats, checksum, problem = self._load(final, up)
        if problem is not None and self.on_notice is not None:
            self.on_notice(f"cached stage {name} cannot be used: {problem}; recomputing it")
        if self.on_stage is not None:
            self.on_stage(name, stats is not None)
        if stats is not None:
            return StageResult(name, fp, final, stats, cached=True, checksum=checksum)
        tmp = self.root / f".{name}-{fp}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # Through JSON, so a fresh stage and a cached one give the same data (key order too).
        stats = json.loads(json.dumps(work(tmp), ensure_ascii=False, sort_keys=True))
        files = {
            f.relative_to(tmp).as_posix(): file_digest(f)
            for f in sorted(tmp.rglob("*"))
            if f.is_file() and f != tmp / "stage.json"
        }
        checksum = _stage_checksum(stats, files, up_checksum)
        record = {**stats, CACHE_KEY: {"files": files, "up": up_checksum, "checksum": checksum}}
        (tmp / "stage.json").write_text(
            json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)
        return StageResult(name, fp, final, stats, cached=False, checksum=checksum)

    def _load(
        self, final: Path, up: StageResult | None
    ) -> tuple[dict[str, Any] | None, str, str | None]:
        """A cached stage's (stats, checksum, None) when it verifies; (None, "", why not)
        when it does not; (None, "", None) when there is none."""
        path = final / "stage.json"
        if not path.is_file():
            return None, "", None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return None, "", f"{path} is unreadable ({e})"
        meta = record.pop(CACHE_KEY, None) if isinstance(record, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
            return None, "", f"{path} has no checksums (written by an older csft-data?)"
        files: dict[str, Any] = meta["files"]
        checksum = _stage_checksum(record, files, meta.get("up"))
        if meta.get("checksum") != checksum:
            return None, "", f"{path} was changed since the stage wrote it"
        if meta.get("up") != (up.checksum if up is not None else None):
            source = f"stage {up.name}" if up is not None else "its inputs"
            return None, "", f"it was computed from other data of {source}"
        try:
            for rel, want in files.items():  # sizes first: cheap
                if (final / rel).stat().st_size != want["size"]:
                    return None, "", f"{final / rel} changed since the stage wrote it"
            for rel, want in files.items():
                if file_digest(final / rel)["sha256"] != want["sha256"]:
                    return None, "", f"{final / rel} changed since the stage wrote it"
        except FileNotFoundError as e:
            return None, "", f"{e.filename} is missing"
        except (OSError, KeyError, TypeError) as e:
            return None, "", f"{final} cannot be checked ({e})"
        return record, checksum, None


def split_by_source(combined: Path, names: list[str], counts: list[int], out: Path) -> None:
    """Splits a file whose records are the sources' records one after another (``counts``
    each) into ``out/<source>.jsonl``, lines copied verbatim (Rust)."""
    labels = np.repeat(np.arange(len(names), dtype=np.uint8), counts)
    _core.partition_jsonl([combined], labels.tobytes(), [out / f"{n}.jsonl" for n in names])
    combined.unlink()


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows it (no copy of big files), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def pass_through(up: StageResult, names: list[str], d: Path) -> dict[str, Any]:
    """A stage with nothing to do: the upstream files, hard-linked, and their counts."""
    sources = {}
    for n in names:
        link_or_copy(up.file(n), d / f"{n}.jsonl")
        c = up.counts(n)["out"]
        sources[n] = {"in": c, "out": c, "removed": {}}
    return sources


def _sources_key(recipe: Recipe) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "adapter": s.adapter,
            "files": [file_identity(p) for p in s.paths],
            "per_conversation": s.per_conversation,
            "templates": s.templates,
            "mapping": s.mapping,
        }
        for s in recipe.sources
    ]


def adapt_stage(cache: StageCache, recipe: Recipe) -> StageResult:
    """Each source's files, as their authors ship them → Alpaca records (``<source>.jsonl``);
    rejected units → ``<source>.rejected.jsonl``. Counts are in input units (records, text
    blocks, rows): ``units = converted + skipped + rejected``; ``out`` is the records written
    (a dialogue unit gives one record per assistant turn)."""

    def work(d: Path) -> dict[str, Any]:
        sources = {}
        for s in recipe.sources:
            st = convert(
                s.adapter,
                list(s.paths),
                d / f"{s.name}.jsonl",
                templates=s.templates or None,
                per_conversation=s.per_conversation,
                on_error=recipe.on_error,
                quarantine=d / f"{s.name}.rejected.jsonl" if recipe.on_error == "skip" else None,
                mapping=s.mapping or None,
            )
            removed = {f"skipped: {k}": v for k, v in st.get("skipped_by_reason", {}).items()}
            removed.update({f"rejected: {k}": v for k, v in st["rejected_by_reason"].items()})
            sources[s.name] = {
                "in": st["records"],
                "unit": "input units",
                "converted": st["converted"],
                "out": st["written"],
                "removed": removed,
            }
        return {"sources": sources}

    return cache.run("adapt", {"sources": _sources_key(recipe)}, work)


def normalize_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Script conversion (e.g. t2s) and text clean-up of every field, per source."""

    def work(d: Path) -> dict[str, Any]:
        sources = {}
        for s in recipe.sources:
            q = d / f"{s.name}.rejected.jsonl"
            summary = normalize_file(
                up.file(s.name),
                d / f"{s.name}.jsonl",
                on_error="skip",
                quarantine=q,
                **recipe.normalize,
            )
            sources[s.name] = {
                "in": summary.records_in,
                "out": summary.written,
                "removed": {"rejected: unreadable record": summary.rejected}
                if summary.rejected
                else {},
            }
        return {"sources": sources}

    return cache.run("normalize", {"up": up.fingerprint, "config": recipe.normalize}, work, up)


def dedup_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Exact + MinHash-LSH near-duplicate removal per source, then across sources (SF-Med);
    ``clusters.jsonl`` lists every duplicate with the record it duplicates."""
    cfg = recipe.dedup
    names = [s.name for s in recipe.sources]

    def work(d: Path) -> dict[str, Any]:
        if not cfg["enabled"]:
            return {"sources": pass_through(up, names, d), "disabled": True}
        stats = dedup_files(
            [up.file(n) for n in names],
            d / "kept.jsonl",
            clusters=d / "clusters.jsonl",
            quarantine=d / "rejected.jsonl",
            fields=cfg["fields"],
            scope=cfg["scope"],
            threshold=cfg["threshold"],
            num_perm=cfg["num_perm"],
            ngram=cfg["ngram"],
            keep=cfg["keep"],
            priority=names if cfg["keep"] == "priority" else None,
            sketch=cfg["sketch"],
            on_error="skip",
        )
        per = {s["source"]: s for s in stats["sources"]}
        split_by_source(d / "kept.jsonl", names, [per[n]["kept"] for n in names], d)
        reasons = _dedup_reasons(d / "clusters.jsonl")
        sources = {}
        for n in names:
            s = per[n]
            removed = dict(sorted(reasons.get(n, {}).items()))
            if s["rejected"]:
                removed["rejected: no dedup text"] = s["rejected"]
            sources[n] = {"in": s["records"], "out": s["kept"], "removed": removed}
        return {
            "sources": sources,
            "lsh": {k: stats[k] for k in ("per_source_scope", "cross_source_scope") if k in stats},
        }

    return cache.run("dedup", {"up": up.fingerprint, "config": cfg}, work, up)


def _dedup_reasons(clusters: Path) -> dict[str, dict[str, int]]:
    """Duplicates per source, by kind and scope, read back from the clusters file (once)."""
    out: dict[str, dict[str, int]] = {}
    if not clusters.is_file():
        return out
    with clusters.open(encoding="utf-8") as f:
        for line in f:
            for dup in json.loads(line)["duplicates"]:
                key = f"{dup['kind']} duplicate ({dup['scope']})"
                per = out.setdefault(dup["source"], {})
                per[key] = per.get(key, 0) + 1
    return out


def decontaminate_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Removes training records that contain an evaluation item (char n-gram overlap on the
    normalized question); ``hits.jsonl`` names the evaluation file and item of each."""
    names = [s.name for s in recipe.sources]
    styles = {a["name"]: a["style"] for a in adapters()}
    cfg = recipe.decontaminate

    def work(d: Path) -> dict[str, Any]:
        if not recipe.evals:
            return {"sources": pass_through(up, names, d), "evals": []}
        evals: dict[str | Path, list[str] | None] = {}
        described = []
        originals: dict[str, str] = {}
        left_out: dict[str, int] = {}
        (d / "evals").mkdir()
        for j, e in enumerate(recipe.evals):
            path, fields = e.path, list(e.fields) if e.fields else None
            if e.adapter is not None:
                path = d / "evals" / f"{j}-{e.adapter}-{e.path.stem}.jsonl"
                # Only each item's question and options are checked: an item with an empty or
                # unusable answer is still used; one without question text is left out.
                got = convert(
                    e.adapter,
                    [e.path],
                    path,
                    questions_only=True,
                    on_error=recipe.on_error,
                    quarantine=d / "evals" / f"{j}-{e.adapter}-{e.path.stem}.rejected.jsonl",
                )
                for reason, k in got["rejected_by_reason"].items():
                    key = f"{e.path.name}: rejected: {reason}"
                    left_out[key] = left_out.get(key, 0) + k
                for reason, k in got["skipped_by_reason"].items():
                    key = f"{e.path.name}: skipped: {reason}"
                    left_out[key] = left_out.get(key, 0) + k
                if fields is None:
                    # An MCQA item's stem and options are its `input`; the instruction is the
                    # exam boilerplate every converted item shares.
                    mcqa = styles[e.adapter] == "mcqa"
                    fields = ["input"] if mcqa else ["instruction", "input"]
            evals[path] = fields
            described.append({"file": str(e.path), "adapter": e.adapter, "fields": fields})
            originals[str(path)] = str(e.path)
        stats = decontaminate(
            [up.file(n) for n in names],
            d / "clean.jsonl",
            evals,
            fields=cfg["fields"],
            ngram=cfg["ngram"],
            threshold=cfg["threshold"],
            report=d / "hits.jsonl",
            quarantine=d / "rejected.jsonl",
            on_error="skip",
            eval_on_error=recipe.on_error,
        )
        if stats["eval_no_text"]:
            left_out["no question text"] = stats["eval_no_text"]
        if stats["eval_rejected"]:
            left_out["malformed rows"] = stats["eval_rejected"]
        per = {s["source"]: s for s in stats["sources"]}
        split_by_source(d / "clean.jsonl", names, [per[n]["kept"] for n in names], d)
        _name_original_evals(d / "hits.jsonl", originals)
        sources = {}
        for n in names:
            s = per[n]
            removed = {}
            if s["removed"]:
                removed["contains an evaluation item"] = s["removed"]
            if s["rejected"]:
                removed["rejected: no question text"] = s["rejected"]
            sources[n] = {"in": s["records"], "out": s["kept"], "removed": removed}
        return {
            "sources": sources,
            "evals": described,
            "eval_items": stats["eval_items"],
            "eval_items_hit": stats["eval_items_hit"],
            "eval_items_unchecked": stats["eval_unchecked"],
            "eval_items_left_out": dict(sorted(left_out.items())),
        }

    key = {
        "up": up.fingerprint,
        "config": cfg,
        "evals": [
            {"file": file_identity(e.path), "adapter": e.adapter, "fields": e.fields}
            for e in recipe.evals
        ],
    }
    return cache.run("decontaminate", key, work, up)


def _name_original_evals(hits: Path, originals: dict[str, str]) -> None:
    """Hits name the user's evaluation file, not its converted copy in the stage folder (whose
    path depends on the output folder)."""
    if not hits.is_file():
        return
    lines = []
    with hits.open(encoding="utf-8") as f:
        for line in f:
            h = json.loads(line)
            h["eval_file"] = originals.get(h["eval_file"], h["eval_file"])
            lines.append(json.dumps(h, ensure_ascii=False, separators=(",", ":")))
    hits.write_text("".join(x + "\n" for x in lines), encoding="utf-8")


def lengths_stage(cache: StageCache, recipe: Recipe, up: StageResult) -> StageResult:
    """Token lengths under the recipe's tokenizer and chat template, and the cut-off policy:
    ``drop`` removes records longer than ``cutoff_len`` (into ``<source>.over.jsonl``),
    ``truncate`` and ``keep`` keep them (the trainer truncates them with the same rule, which
    the report counts). ``tokens.jsonl`` has one line per record (source, index, tokens)."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.lengths

    def work(d: Path) -> dict[str, Any]:
        if cfg is None:
            return {"sources": pass_through(up, names, d), "counted": False}
        import polars as pl

        cutoff = cfg["cutoff_len"]
        stats = token_lengths(
            [up.file(n) for n in names],
            cfg["tokenizer"],
            template=cfg["template"],
            cutoffs=[cutoff],
            system=cfg["system"],
            buckets=d / "tokens.jsonl",
            quarantine=d / "unrenderable.jsonl",
            on_error="skip",
        )
        per = {s["source"]: s for s in stats["sources"]}
        tokens = pl.read_ndjson(
            d / "tokens.jsonl",
            schema={"source": pl.Utf8, "index": pl.Int64, "total_tokens": pl.Int64},
        )
        sources = {}
        for n in names:
            total = up.counts(n)["out"]
            t = tokens.filter(pl.col("source") == n)
            labels = np.full(total, DROP, dtype=np.uint8)  # unrenderable records: dropped
            over = t["total_tokens"].to_numpy() > cutoff
            idx = t["index"].to_numpy()
            labels[idx] = np.where(over & (cfg["policy"] == "drop"), 1, 0)
            _core.partition_jsonl(
                [up.file(n)], labels.tobytes(), [d / f"{n}.jsonl", d / f"{n}.over.jsonl"]
            )
            removed = {}
            if per[n]["rejected"]:
                removed["rejected: cannot be rendered"] = per[n]["rejected"]
            n_over = int(over.sum())
            if cfg["policy"] == "drop" and n_over:
                removed[f"longer than cutoff_len {cutoff}"] = n_over
            sources[n] = {
                "in": total,
                "out": int((labels == 0).sum()),
                "removed": removed,
                "over_cutoff": n_over,
                "tokens": {k: per[n][k] for k in ("mean", "quantiles", "total_tokens")},
            }
        return {"sources": sources, "counted": True, "cutoff_len": cutoff, **cfg}

    key: dict[str, Any] = {"up": up.fingerprint, "config": cfg}
    if cfg is not None:
        key["tokenizer"] = file_identity(Path(cfg["tokenizer"]))
    return cache.run("lengths", key, work, up)
