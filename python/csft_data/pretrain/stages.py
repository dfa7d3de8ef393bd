"""The stages of ``csft-data pretrain`` that the SFT build does not have, on the machinery of
:mod:`csft_data.pipeline.cache` (cached by fingerprint, verified, per-source accounting):

- ``documents``: each source's files → documents ``<source>.jsonl`` (``{"text", "origin"}``;
  Rust: ``text_documents`` / ``render_documents``, SFT files through their adapter first);
- ``paragraphs`` (with ``[paragraphs] dedup``): paragraphs seen earlier in the corpus removed
  from their documents (Rust), emptied documents removed;
- ``quality``: heuristic labels per document (Rust), the failing documents routed by reason
  into ``removed/<source>.<reason>.jsonl``;
- ``tokens``: every kept document encoded with the model's tokenizer into one token store
  (``tokens.bin``, little-endian u32) and ``counts.bin`` (tokens per document);
- ``pack``: the mixture (which documents, how many epochs of each category, seeded) and the
  seeded shuffle as one order of document indices, packed by Rust into ``seq_len`` shards.

Normalization, dedup and decontamination are the SFT build's stages, run on the ``text``
field. Each function orchestrates; the per-document work is in ``rust/pretrain/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from csft_data import _core
from csft_data._core import ConfigError
from csft_data.pipeline.cache import StageCache, StageResult, file_identity, pass_through
from csft_data.pipeline.mixture import seeded_order
from csft_data.pretrain.recipe import TEXT, DocSource, PretrainRecipe

#: Quality label → reason name (0: kept).
REASONS: dict[int, str] = dict(_core.quality_reasons())


def source_files(s: DocSource) -> list[Path]:
    """A source's input files: its paths, each folder expanded to its files matching the
    source's ``glob`` (recursively, sorted); a path that does not exist is an error."""
    files: list[Path] = []
    for p in s.paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob(s.glob) if f.is_file())
            if not found:
                raise ConfigError(f"source {s.name!r}: no file matching {s.glob!r} in {p}")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"source {s.name!r}: {p} does not exist")
    return files


def documents_stage(cache: StageCache, recipe: PretrainRecipe) -> StageResult:
    """Each source's files → documents (``<source>.jsonl``); unusable files or records →
    ``<source>.rejected.jsonl`` with their reasons."""
    from csft_data.adapters import convert

    files = {s.name: source_files(s) for s in recipe.sources}
    skip = recipe.on_error == "skip"

    def work(d: Path) -> dict[str, Any]:
        sources = {}
        for s in recipe.sources:
            out, bad = d / f"{s.name}.jsonl", d / f"{s.name}.rejected.jsonl"
            removed: dict[str, int] = {}
            if s.format == "text":
                st = _core.text_documents(
                    files[s.name], s.split, out, quarantine=bad, on_error=recipe.on_error
                )
                if st["rejected"]:
                    removed["rejected: file is neither UTF-8 nor GB18030"] = st["rejected"]
                unit = "documents (files rejected whole)"
            else:
                inputs = files[s.name]
                if s.format == "sft":
                    sft = d / f".{s.name}.sft.jsonl"
                    got = convert(
                        str(s.adapter),
                        inputs,
                        sft,
                        on_error=recipe.on_error,
                        quarantine=d / f"{s.name}.adapter-rejected.jsonl" if skip else None,
                        # a dialogue is one document, not one record per turn with history
                        per_conversation=s.style == "dialogue",
                    )
                    for reason, k in got["rejected_by_reason"].items():
                        removed[f"rejected: {reason}"] = k
                    for reason, k in got["skipped_by_reason"].items():
                        removed[f"skipped: {reason}"] = k
                    inputs = [sft]
                st = _records_documents(s, inputs, out, bad, recipe.on_error)
                if s.format == "sft":
                    inputs[0].unlink()
                if st["rejected"]:
                    removed["rejected: no document text"] = st["rejected"]
                unit = "records"
            sources[s.name] = {
                "in": st["documents"] + sum(removed.values()),
                "unit": unit,
                "out": st["documents"],
                "removed": removed,
                "category": s.category,
                "files": st["files"],
                "chars": st["chars"],
            }
        return {"sources": sources}

    key = {
        "sources": [
            {
                "name": s.name,
                "format": s.format,
                "split": s.split,
                "text_field": s.text_field,
                "adapter": s.adapter,
                "style": s.style,
                "files": [file_identity(f) for f in files[s.name]],
            }
            for s in recipe.sources
        ],
        "on_error": recipe.on_error,
    }
    return cache.run("documents", key, work)


def _records_documents(
    s: DocSource, inputs: list[Path], out: Path, bad: Path, on_error: str
) -> dict[str, int]:
    """Documents of record files (a text field, or SFT records rendered), in input order."""
    return _core.render_documents(
        inputs,
        out,
        text_field=s.text_field if s.format == "records" else None,
        style=s.style or "plain",
        quarantine=bad,
        on_error=on_error,
        # SFT records are named by source and record of the adapted data, not the temp file
        origin=f"{s.name}/{s.adapter}" if s.format == "sft" else None,
    )


def paragraphs_stage(cache: StageCache, recipe: PretrainRecipe, up: StageResult) -> StageResult:
    """With ``[paragraphs] dedup``: paragraphs already seen earlier in the corpus (sources in
    recipe order) removed from their documents (Rust); documents left empty are removed."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.paragraphs

    def work(d: Path) -> dict[str, Any]:
        if not cfg.dedup:
            return {"sources": pass_through(up, names, d), "disabled": True}
        stats = _core.dedup_paragraphs(
            [up.file(n) for n in names],
            [d / f"{n}.jsonl" for n in names],
            field=TEXT,
            split=cfg.split,
            min_chars=cfg.min_chars,
        )
        sources = {}
        for n, st in zip(names, stats, strict=True):
            sources[n] = {
                "in": st["documents"],
                "out": st["kept"],
                "removed": {"every paragraph seen before": st["emptied"]} if st["emptied"] else {},
                **{k: st[k] for k in ("paragraphs", "paragraphs_removed", "chars_removed")},
            }
        return {"sources": sources}

    return cache.run("paragraphs", {"up": up.fingerprint, "config": cfg.to_json()}, work, up)


def quality_stage(cache: StageCache, recipe: PretrainRecipe, up: StageResult) -> StageResult:
    """Documents failing a heuristic of ``[quality]`` → ``removed/<source>.<reason>.jsonl``
    (the first heuristic each fails); the others pass on."""
    names = [s.name for s in recipe.sources]
    cfg = recipe.quality

    def work(d: Path) -> dict[str, Any]:
        if not cfg.enabled:
            return {"sources": pass_through(up, names, d), "disabled": True}
        (d / "removed").mkdir()
        sources = {}
        for n in names:
            raw = _core.quality_labels(up.file(n), field=TEXT, **cfg.kwargs())
            labels = np.frombuffer(raw, dtype=np.uint8)
            hits = np.bincount(labels, minlength=len(REASONS) + 1)
            outputs: list[Path | None] = [d / f"{n}.jsonl"]
            outputs += [
                d / "removed" / f"{n}.{REASONS[code]}.jsonl" if hits[code] else None
                for code in range(1, len(REASONS) + 1)
            ]
            _core.partition_jsonl([up.file(n)], raw, outputs)
            sources[n] = {
                "in": len(labels),
                "out": int(hits[0]),
                "removed": {
                    REASONS[c]: int(hits[c]) for c in range(1, len(REASONS) + 1) if hits[c]
                },
            }
        return {"sources": sources}

    return cache.run("quality", {"up": up.fingerprint, "config": cfg.to_json()}, work, up)


def tokens_stage(cache: StageCache, recipe: PretrainRecipe, up: StageResult) -> StageResult:
    """Every document encoded with ``[pack] tokenizer`` (``add_special_tokens=False``) into
    ``tokens.bin``; ``counts.bin`` holds the tokens per document, sources in recipe order."""
    names = [s.name for s in recipe.sources]
    tok_path = recipe.pack.tokenizer

    def work(d: Path) -> dict[str, Any]:
        tok = _core.TokenCounter(tok_path)
        raw = _core.tokenize_documents([up.file(n) for n in names], tok, d / "tokens.bin")
        (d / "counts.bin").write_bytes(raw)
        counts = np.frombuffer(raw, dtype="<u4")
        sources, start = {}, 0
        for n in names:
            k = up.counts(n)["out"]
            part = counts[start : start + k]
            start += k
            sources[n] = {"in": k, "out": k, "removed": {}, "tokens": int(part.sum(dtype=np.int64))}
        if start != len(counts):
            raise RuntimeError(f"tokens: {len(counts)} documents encoded, {start} expected")
        return {"sources": sources}

    key = {"up": up.fingerprint, "tokenizer": file_identity(tok_path)}
    return cache.run("tokens", key, work, up)


def special_ids(recipe: PretrainRecipe) -> tuple[int, int, str, str]:
    """(eos id, pad id, eos token, pad token) of ``[pack]``: the configured tokens, else the
    EOS the tokenizer's folder configures."""
    tok = _core.TokenCounter(recipe.pack.tokenizer)
    eos = recipe.pack.eos
    if eos is None:
        eos = tok.eos_token
        if eos is None:
            raise ConfigError(
                f'[pack] eos: {recipe.pack.tokenizer} configures no EOS token; give eos = "..."'
            )
    pad = recipe.pack.pad or eos
    ids = []
    for key, token in (("eos", eos), ("pad", pad)):
        i = tok.token_id(token)
        if i is None:
            raise ConfigError(f"[pack] {key}: {token!r} is not a token of {recipe.pack.tokenizer}")
        ids.append(i)
    return ids[0], ids[1], eos, pad


def mixture_order(
    counts: npt.NDArray[np.uint32], categories: npt.NDArray[np.int64], recipe: PretrainRecipe
) -> tuple[npt.NDArray[np.uint64], dict[str, Any]]:
    """The documents to pack, in packing order (indices into ``counts``; repeats are extra
    epochs), and per category: tokens available, target, taken, epochs. Tokens count one EOS
    per document."""
    from csft_data.pretrain.config import CATEGORIES

    n = len(counts)
    sizes = counts.astype(np.int64) + 1
    cfg = recipe.mixture
    avail = {c: int(sizes[categories == k].sum()) for k, c in enumerate(CATEGORIES)}
    present = [c for c in CATEGORIES if np.any(categories == CATEGORIES.index(c))]
    targets: dict[str, int | None] = dict.fromkeys(present)
    if cfg.tokens is not None:
        targets.update({c: int(t) for c, t in cfg.tokens.items()})
    elif cfg.total_tokens is not None:
        weights = {c: avail[c] ** (1.0 / cfg.temperature) for c in present}
        total_w = sum(weights.values()) or 1.0
        targets = {c: round(cfg.total_tokens * weights[c] / total_w) for c in present}
    picked: list[npt.NDArray[np.int64]] = []
    keys: list[npt.NDArray[np.uint64]] = []
    report = {}
    for c, target in targets.items():
        k = CATEGORIES.index(c)
        docs = np.flatnonzero(categories == k)
        have = avail[c]
        if target is not None and target > 0 and have == 0:
            raise ConfigError(f"[mixture] {c}: target {target} tokens, but no document is left")
        want = have if target is None else target
        full, rest = (want // have, want % have) if have else (0, 0)
        chosen = [docs] * full
        if rest:
            order = docs[np.argsort(seeded_order(n, recipe.seed, 11 + k)[docs], kind="stable")]
            cum = np.cumsum(sizes[order])
            chosen.append(order[: int(np.searchsorted(cum, rest, side="left")) + 1])
        for copy, part in enumerate(chosen):
            picked.append(part)
            keys.append(seeded_order(n, recipe.seed, 1000 + copy)[part])
        taken = int(sum(int(sizes[p].sum()) for p in chosen))
        report[c] = {
            "documents": len(docs),
            "available_tokens": have,
            "target_tokens": target,
            "taken_tokens": taken,
            "epochs": round(taken / have, 4) if have else 0.0,
        }
    if not picked:
        return np.zeros(0, dtype=np.uint64), report
    all_docs = np.concatenate(picked)
    order = np.argsort(np.concatenate(keys), kind="stable")
    return all_docs[order].astype(np.uint64), report


def pack_stage(cache: StageCache, recipe: PretrainRecipe, up: StageResult) -> StageResult:
    """The mixture and the seeded shuffle as one order of documents, packed into shards of
    ``[pack] sequences_per_shard`` rows of ``seq_len`` tokens (``rust/pretrain/pack.rs``)."""
    from csft_data.pretrain.config import CATEGORIES

    names = [s.name for s in recipe.sources]
    cfg = recipe.pack

    def work(d: Path) -> dict[str, Any]:
        eos_id, pad_id, eos, pad = special_ids(recipe)
        counts = np.fromfile(up.dir / "counts.bin", dtype="<u4")
        per = [up.counts(n)["out"] for n in names]
        source_of = np.repeat(np.arange(len(names)), per)
        cat = np.array([CATEGORIES.index(s.category) for s in recipe.sources], dtype=np.int64)
        order, mixture = mixture_order(counts, cat[source_of], recipe)
        st = _core.pack_documents(
            up.dir / "tokens.bin",
            counts.astype("<u4").tobytes(),
            order.astype("<u8").tobytes(),
            d,
            seq_len=cfg.seq_len,
            eos_id=eos_id,
            pad_id=pad_id,
            sequences_per_shard=cfg.sequences_per_shard,
        )
        uses = np.bincount(order.astype(np.int64), minlength=len(counts))
        sources, start = {}, 0
        for n, k in zip(names, per, strict=True):
            u = uses[start : start + k]
            c = counts[start : start + k].astype(np.int64) + 1
            start += k
            sources[n] = {
                "in": k,
                "out": k,
                "removed": {},
                "documents_packed": int(u.sum()),
                "documents_unused": int((u == 0).sum()),
                "tokens_packed": int((u * c).sum()),
            }
        np.asarray(order, dtype="<u8").tofile(d / "order.bin")
        return {
            "sources": sources,
            "mixture": mixture,
            "pack": {**st, "eos_id": eos_id, "pad_id": pad_id, "eos": eos, "pad": pad},
        }

    key = {
        "up": up.fingerprint,
        "pack": cfg.to_json(),
        "tokenizer": file_identity(cfg.tokenizer),
        "mixture": recipe.mixture.to_json(),
        "categories": [s.category for s in recipe.sources],
        "seed": recipe.seed,
    }
    return cache.run("pack", key, work, up)
