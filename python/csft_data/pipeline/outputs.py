"""The final write of ``csft-data build``: train/val JSONL (lines copied verbatim by the Rust
partitioner) and Parquet (streamed by polars with the Alpaca schema), LLaMA-Factory's
``dataset_info.json``, ``manifest.json``, the report, the dataset card and ``removed/`` (the
per-record evidence of every removal, hard-linked from the stage cache). Everything is written
into ``<dir>/.staging`` and moved into place once complete; nothing here depends on the clock,
so the same recipe and seed give byte-identical outputs.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from csft_data import __version__, _core, write
from csft_data._core import CsftDataError
from csft_data.pipeline.cache import StageResult, fingerprint, link_or_copy
from csft_data.pipeline.recipe import Recipe

#: The Alpaca columns (LLaMA-Factory names: prompt/query/response/system/history) and the
#: provenance columns, with their Parquet types.
ALPACA_COLUMNS = ("instruction", "input", "output", "system", "history")
PROVENANCE_COLUMNS = ("source", "style", "id", "turn")

#: Evidence files each stage leaves, by file-name pattern (``{s}``: the source name).
EVIDENCE = {
    "adapt": ["{s}.rejected.jsonl"],
    "normalize": ["{s}.rejected.jsonl"],
    "dedup": ["clusters.jsonl", "rejected.jsonl"],
    "decontaminate": ["hits.jsonl", "rejected.jsonl"],
    "lengths": ["{s}.over.jsonl", "unrenderable.jsonl"],
    "mixture": ["{s}.unselected.jsonl"],
}


def _schema() -> dict[str, Any]:
    import polars as pl

    return {
        "instruction": pl.Utf8,
        "input": pl.Utf8,
        "output": pl.Utf8,
        "system": pl.Utf8,
        "history": pl.List(pl.List(pl.Utf8)),
        "source": pl.Utf8,
        "style": pl.Utf8,
        "id": pl.Utf8,
        "turn": pl.Int64,
    }


def alpaca_features() -> Any:
    """The ``datasets.Features`` of a build's train/val files (the Parquet schema), for
    ``datasets.load_dataset("json", data_files=..., features=alpaca_features())``: with them
    a JSONL file loads whatever records its first chunk holds (see :func:`dataset_info`)."""
    try:
        from datasets import Features, Sequence, Value
    except ImportError:
        raise CsftDataError(
            "alpaca_features() needs the `datasets` package: pip install datasets"
        ) from None
    text = Value("string")
    return Features(
        {
            "instruction": text,
            "input": text,
            "output": text,
            "system": text,
            "history": Sequence(Sequence(text)),
            "source": text,
            "style": text,
            "id": text,
            "turn": Value("int64"),
        }
    )


def write_parquet(src: Path, dst: Path) -> None:
    """JSONL → Parquet with the fixed Alpaca schema, streamed (no Python objects)."""
    write.write_parquet(src, dst, _schema())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_info(name: str) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entries for the two splits (alpaca formatting).

    They name the Parquet files: their schema is fixed, so every column has one type in any
    build. A JSONL file whose first 10 MB hold no dialogue record has an all-empty ``history``
    there, which ``datasets``' JSON loader types as a list of nulls and then fails to cast the
    dialogue records that follow (``Couldn't cast array of type list<item: string> to
    null``); the JSONL files load with explicit features (:func:`csft_data.alpaca_features`)."""
    columns = {
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "system": "system",
        "history": "history",
    }
    return {
        f"{name}_{split}": {
            "file_name": f"{split}.parquet",
            "formatting": "alpaca",
            "columns": columns,
        }
        for split in ("train", "val")
    }


def _check_accounting(stages: list[dict[str, Any]]) -> None:
    """Every stage: ``in = out + removed`` per source; each stage's ``in`` is the previous
    stage's ``out`` (records, after the adapter's units)."""
    prev: dict[str, int] | None = None
    for st in stages:
        for name, c in st["sources"].items():
            removed = sum(c["removed"].values())
            units_ok = st["stage"] == "adapt" and c["in"] == c.get("converted", 0) + removed
            if not units_ok and c["in"] != c["out"] + removed:
                raise CsftDataError(
                    f"internal error: stage {st['stage']} source {name}: in {c['in']} ≠ out "
                    f"{c['out']} + removed {removed}"
                )
            if prev is not None and c["in"] != prev[name]:
                raise CsftDataError(
                    f"internal error: stage {st['stage']} source {name} got {c['in']} records, "
                    f"the stage before gave {prev[name]}"
                )
        prev = {n: c["out"] for n, c in st["sources"].items()}


def write_outputs(recipe: Recipe, results: list[StageResult]) -> dict[str, Any]:
    """Writes every output of a finished build into ``recipe.out_dir``; returns the manifest."""
    from csft_data.pipeline.report import write_card, write_report

    out = recipe.out_dir
    names = [s.name for s in recipe.sources]
    by_name = {r.name: r for r in results}
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    mixture, split = by_name["mixture"], by_name["split"]
    labels = np.frombuffer((split.dir / "labels.bin").read_bytes(), dtype=np.uint8)
    counts = _core.partition_jsonl(
        [mixture.file(n) for n in names],
        labels.tobytes(),
        [staging / "train.jsonl", staging / "val.jsonl"],
    )
    for part in ("train", "val"):
        write_parquet(staging / f"{part}.jsonl", staging / f"{part}.parquet")
    (staging / "dataset_info.json").write_text(
        json.dumps(dataset_info(recipe.name), ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )

    removed_files: dict[str, list[str]] = {}
    for r in results:
        for pattern in EVIDENCE.get(r.name, []):
            for n in names if "{s}" in pattern else [None]:
                f = r.dir / pattern.format(s=n)
                if f.is_file() and f.stat().st_size > 0:
                    rel = f"removed/{r.name}/{f.name}"
                    link_or_copy(f, staging / rel)
                    removed_files.setdefault(r.name, []).append(rel)

    stages: list[dict[str, Any]] = [
        {
            "stage": r.name,
            "fingerprint": r.fingerprint,
            "sources": {n: r.stats["sources"][n] for n in names},
        }
        for r in results
    ]
    _check_accounting(stages)
    per_source = {}
    for s in recipe.sources:
        a = by_name["adapt"].counts(s.name)
        sp = split.counts(s.name)
        removed = {
            f"{st['stage']}: {reason}": k
            for st in stages
            for reason, k in st["sources"][s.name]["removed"].items()
        }
        per_source[s.name] = {
            "adapter": s.adapter,
            "style": s.style,
            "files": [{"path": str(p), "sha256": _sha256(p)} for p in s.paths],
            "input_units": a["in"],
            "records": a["out"],
            "train": sp["train"],
            "val": sp["val"],
            "removed": removed,
        }
    outputs: dict[str, dict[str, Any]] = {
        f.name: {"sha256": _sha256(f)} for f in sorted(staging.iterdir()) if f.is_file()
    }
    outputs["train.jsonl"]["records"], outputs["val.jsonl"]["records"] = counts
    manifest: dict[str, Any] = {
        "name": recipe.name,
        "recipe_fingerprint": fingerprint({"recipe": recipe.to_json()}),
        "seed": recipe.seed,
        "versions": {
            "csft_data": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "polars": __import__("polars").__version__,
        },
        "recipe": recipe.to_json(),
        "sources": per_source,
        "stages": stages,
        "mixture": mixture.stats["mixture"],
        "split": split.stats["split"],
        "decontamination": {
            k: by_name["decontaminate"].stats.get(k)
            for k in (
                "evals",
                "eval_items",
                "eval_items_hit",
                "eval_items_unchecked",
                "eval_items_left_out",
            )
        },
        "outputs": outputs,
        "removed_files": removed_files,
    }
    if "diversify" in by_name:  # only then: other builds keep their manifests
        manifest["diversify"] = by_name["diversify"].stats["diversify"]
    (staging / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    write_report(staging, manifest, results)
    write_card(staging, manifest, recipe)

    publish(staging, out)
    return manifest


def publish(staging: Path, out: Path) -> None:
    """Moves everything in ``staging`` into ``out`` (a folder there replaced whole), then
    removes ``staging``."""
    for entry in sorted(staging.iterdir()):
        dest = out / entry.name
        if dest.is_dir():
            shutil.rmtree(dest)
        entry.replace(dest)
    staging.rmdir()
