"""The generic machinery of the cached stages of ``csft-data build``: :class:`StageCache`, which
runs a stage into a folder named by the stage's fingerprint (its configuration, its upstream
fingerprint, the identity of the files it reads and the csft-data version), so a re-run after
a crash or a change in a later stage reuses every stage that did not change; the
:class:`StageResult` a stage gives; and the helpers stages share (routing a combined file back
to per-source files, joining per-source parts into one file, hard links, a stage with nothing
to do). No stage is defined here: each
stage is in its own module (``adapt.py``, ``normalize.py``, ``dedup.py``, ``decontaminate.py``,
``lengths.py``, ``mixture.py``, ``split.py``).

Every stage reports, per source, the records in, the records out and why the others left, so
``in = out + removed`` holds exactly at each stage.

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

from csft_data import __version__

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

    def digests(self) -> dict[str, dict[str, Any]]:
        """Size and sha256 of each of the stage's files (relative names), as the cache recorded
        them when the stage was written (and checked them when it was reused)."""
        record = json.loads((self.dir / "stage.json").read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = record[CACHE_KEY]["files"]
        return files


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


def concatenate(parts: list[Path], out: Path) -> None:
    """Writes the files ``parts`` one after another into ``out`` (bytes as they are): a stage's
    per-source side files (hits, rejections) written apart by per-source tasks, in the order a
    single call over every source writes them."""
    with out.open("wb") as w:
        for p in parts:
            with p.open("rb") as f:
                shutil.copyfileobj(f, w, 1 << 20)


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
