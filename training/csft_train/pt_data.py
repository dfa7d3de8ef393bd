"""Continued pre-training data: the token shards of a pretrain output folder, read as rows.

A folder holds ``manifest.json`` (``"kind": "pretrain"``, ``seq_len``, ``dtype = "uint32"``,
``eos_id``, ``pad_id`` and ``shards``: ``{"tokens", "docs", "sequences", "content_tokens"}``
each, file names relative to the folder; other keys are ignored) and per shard:

* ``tokens``: little-endian uint32 ids, ``sequences × seq_len`` of them, rows of ``seq_len``.
  The shard's flat stream is the corpus's documents, each followed by EOS, concatenated; flat
  positions ``>= content_tokens`` are padding (``pad_id``, only at the end of the last shard).
* ``docs``: little-endian uint64, the sorted flat offsets where a document starts in the shard
  (a document that began in the previous shard goes on at offset 0 and has no entry there).

:func:`load_pretrain` checks every manifest and file size (an error names the file) and
memory-maps the token files: rows are read when a batch needs them, never the whole corpus.
:meth:`PretrainData.row` gives a row's ``(input_ids, position_ids, labels)``: the position ids
restart at 0 at the row start and at every document start inside the row (transformers then
builds a block-diagonal causal mask, as for packed SFT rows, so no document attends to
another); a document's first token is not a label (nothing is trained to predict across a
boundary) and neither is padding, which is one more segment. The trained-token counts the loss
is normalised by come from the offsets alone, without reading the tokens.

Nothing here imports torch; :func:`collate_pt` does when it runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from csft_train.config import Config, ConfigError
from csft_train.data import IGNORE_INDEX

if TYPE_CHECKING:
    import torch

MANIFEST = "manifest.json"

#: ``(input_ids, position_ids, labels)`` of one row, int64 arrays of ``seq_len``.
Row = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass(frozen=True)
class Shard:
    """One memory-mapped shard: ``tokens`` is ``(sequences, seq_len)`` uint32."""

    path: Path
    tokens: npt.NDArray[np.uint32]
    #: Flat offsets of the document starts in this shard, sorted.
    starts: npt.NDArray[np.int64]
    content_tokens: int

    @property
    def sequences(self) -> int:
        return int(self.tokens.shape[0])


@dataclass
class PretrainData:
    """Every row of every shard of every folder, in order (row ``r`` is global)."""

    seq_len: int
    shards: list[Shard]
    #: ``offsets[s]``: the global index of shard ``s``'s first row (one more entry: the total).
    offsets: npt.NDArray[np.int64]
    #: Rows kept (``[data] max_samples``); at most ``offsets[-1]``.
    rows: int

    def __len__(self) -> int:
        return self.rows

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Every row's length (``seq_len``), for :func:`csft_train.data.plan_batches`."""
        return np.full(self.rows, self.seq_len, dtype=np.int64)

    @property
    def content_tokens(self) -> int:
        """Tokens that are not padding, over the rows kept."""
        return int(self.content_per_row().sum())

    @property
    def documents(self) -> int:
        """Documents starting in the rows kept (one cut at a shard's end counts once)."""
        n = 0
        for s, shard in enumerate(self.shards):
            kept = min(max(self.rows - int(self.offsets[s]), 0), shard.sequences)
            n += int(np.searchsorted(shard.starts, kept * self.seq_len, side="left"))
        return n

    def locate(self, r: int) -> tuple[Shard, int]:
        """The shard of global row ``r`` and the row's index in it."""
        if not 0 <= r < self.rows:
            raise IndexError(f"row {r} out of range (0..{self.rows - 1})")
        s = int(np.searchsorted(self.offsets, r, side="right")) - 1
        return self.shards[s], r - int(self.offsets[s])

    def row(self, r: int) -> Row:
        """``(input_ids, position_ids, labels)`` of row ``r``, int64 (see the module comment)."""
        shard, k = self.locate(r)
        length = self.seq_len
        a = k * length
        ids = np.asarray(shard.tokens[k], dtype=np.int64)
        labels = ids.copy()
        lo, hi = np.searchsorted(shard.starts, [a, a + length], side="left")
        doc_starts = shard.starts[lo:hi] - a
        labels[doc_starts] = IGNORE_INDEX
        content = min(max(shard.content_tokens - a, 0), length)
        labels[content:] = IGNORE_INDEX
        # each position's segment start: the row start, a document start, or the padding's
        seg_start = np.zeros(length, dtype=np.int64)
        seg_start[doc_starts] = doc_starts
        if content < length:
            seg_start[content] = content
        np.maximum.accumulate(seg_start, out=seg_start)
        return ids, np.arange(length, dtype=np.int64) - seg_start, labels

    def content_per_row(self) -> npt.NDArray[np.int64]:
        """Tokens of each kept row that are not padding."""
        parts = []
        for shard in self.shards:
            a = np.arange(shard.sequences, dtype=np.int64) * self.seq_len
            parts.append(np.clip(shard.content_tokens - a, 0, self.seq_len))
        return np.concatenate(parts)[: self.rows]

    def trained_per_row(self) -> npt.NDArray[np.int64]:
        """Label tokens of each kept row that carry loss after the causal shift (positions
        ``1..seq_len-1`` that are neither a document start nor padding), from the offsets."""
        parts = []
        for shard in self.shards:
            a = np.arange(shard.sequences, dtype=np.int64) * self.seq_len
            content = np.clip(shard.content_tokens - a, 0, self.seq_len)
            # document starts at row positions 1..content-1 (a start at padding cannot be)
            lo = np.searchsorted(shard.starts, a + 1, side="left")
            hi = np.searchsorted(shard.starts, a + content, side="left")
            parts.append(np.maximum(content - 1, 0) - np.maximum(hi - lo, 0))
        return np.concatenate(parts)[: self.rows]


def read_manifest(folder: Path) -> dict[str, Any]:
    """``folder/manifest.json`` of a pretrain output, with its required keys checked."""
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pretrain manifest (is {folder} a pretrain output?)")
    try:
        m = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON manifest ({e})") from None
    if not isinstance(m, dict) or m.get("kind") != "pretrain":
        kind = m.get("kind") if isinstance(m, dict) else None
        raise ValueError(f'{path}: not a pretrain manifest ("kind" is {kind!r}, not "pretrain")')
    for key in ("seq_len", "eos_id", "pad_id"):
        if isinstance(m.get(key), bool) or not isinstance(m.get(key), int) or m[key] < 0:
            raise ValueError(f"{path}: {key!r} must be a non-negative integer, got {m.get(key)!r}")
    if m["seq_len"] < 2:
        raise ValueError(f"{path}: seq_len must be at least 2, got {m['seq_len']}")
    if m.get("dtype") != "uint32":
        raise ValueError(f'{path}: dtype {m.get("dtype")!r}: only "uint32" shards are read')
    if not isinstance(m.get("shards"), list):
        raise ValueError(f'{path}: "shards" must be a list')
    return m


def _int_field(path: Path, i: int, entry: dict[str, Any], key: str) -> int:
    v = entry.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{path}: shards[{i}] {key!r} must be a non-negative integer, got {v!r}")
    return v


def _open_shard(folder: Path, manifest: dict[str, Any], i: int) -> Shard:
    mpath = folder / MANIFEST
    entry = manifest["shards"][i]
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(k), str) for k in ("tokens", "docs")
    ):
        raise ValueError(f'{mpath}: shards[{i}] needs "tokens" and "docs" file names')
    length = int(manifest["seq_len"])
    sequences = _int_field(mpath, i, entry, "sequences")
    content = _int_field(mpath, i, entry, "content_tokens")
    tok_path, docs_path = folder / entry["tokens"], folder / entry["docs"]
    for p in (tok_path, docs_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: shard file listed in {mpath} is missing")
    want = sequences * length * 4
    got = tok_path.stat().st_size
    if got != want:
        raise ValueError(
            f"{tok_path}: {got} bytes, expected {want} ({sequences} sequences × seq_len {length} "
            f"× 4 bytes, per {mpath}): the shard is truncated or does not belong to this manifest"
        )
    if content > sequences * length:
        raise ValueError(
            f"{mpath}: shards[{i}] content_tokens {content} > {sequences} × {length} tokens"
        )
    if docs_path.stat().st_size % 8:
        raise ValueError(f"{docs_path}: {docs_path.stat().st_size} bytes, not uint64 offsets")
    starts = np.fromfile(docs_path, dtype="<u8").astype(np.int64)
    if len(starts) and ((np.diff(starts) <= 0).any() or starts[-1] >= content):
        raise ValueError(
            f"{docs_path}: document offsets must be increasing and below the shard's "
            f"content_tokens ({content})"
        )
    tokens: npt.NDArray[np.uint32] = np.zeros((0, length), dtype="<u4")
    if sequences:  # (np.memmap refuses an empty file)
        tokens = np.memmap(tok_path, dtype="<u4", mode="r").reshape(-1, length)
    return Shard(tok_path, tokens, starts, content)


def load_pretrain(cfg: Config) -> PretrainData:
    """Opens every folder of ``[data] train`` (see the module comment)."""
    if not cfg.data.train:
        raise ValueError(f"{cfg.source}: [data] train lists no pretrain folder")
    seq_len: int | None = None
    first = ""
    shards: list[Shard] = []
    for name in cfg.data.train:
        folder = Path(name)
        m = read_manifest(folder)
        if seq_len is None:
            seq_len, first = int(m["seq_len"]), name
        elif m["seq_len"] != seq_len:
            raise ConfigError(
                f"{cfg.source}: [data] train: {first} has seq_len {seq_len} but {name} has "
                f"{m['seq_len']}: the folders of one run must share one seq_len"
            )
        shards.extend(_open_shard(folder, m, i) for i in range(len(m["shards"])))
    assert seq_len is not None
    offsets = np.cumsum([0, *(s.sequences for s in shards)], dtype=np.int64)
    rows = int(offsets[-1])
    if cfg.data.max_samples:
        rows = min(rows, cfg.data.max_samples)
    if not rows:
        raise ValueError(f"{cfg.source}: [data] train: the pretrain folders hold no sequence")
    return PretrainData(seq_len, shards, offsets, rows)


def collate_pt(data: PretrainData, batch: list[list[int]]) -> dict[str, torch.Tensor]:
    """``input_ids``, ``position_ids`` and ``labels`` of a micro-batch (rows of one index each,
    as :func:`csft_train.data.plan_batches` plans them); no attention mask."""
    import torch

    rows = [data.row(i) for row in batch for i in row]
    return {
        k: torch.from_numpy(np.stack([r[j] for r in rows]))
        for j, k in enumerate(("input_ids", "position_ids", "labels"))
    }
