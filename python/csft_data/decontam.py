"""Decontamination: drop training records that contain an evaluation item (CMB, CMExam, CMMLU
questions, …), by character n-gram overlap on normalized text; the work runs in Rust
(``rust/decontam.rs``). Each removed record is reported with the evaluation file and item it
contains, so every training record is kept, removed-with-reason or rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from csft_data import _core
from csft_data.dedup import _source_names, check_kept_outputs
from csft_data.normalize import default_quarantine_path
from csft_data.write import staged_output


def decontaminate(
    inputs: Sequence[str | Path],
    output: str | Path | None,
    evals: Sequence[str | Path] | Mapping[str | Path, Sequence[str] | None],
    *,
    fields: Sequence[str] | None = None,
    eval_fields: Sequence[str] | None = None,
    ngram: int = 8,
    threshold: float = 0.5,
    report: str | Path | None = None,
    quarantine: str | Path | None = None,
    format: str | None = None,
    encoding: str = "auto",
    on_error: str = "raise",
    batch_size: int = 4096,
    eval_on_error: str | None = None,
    outputs: Sequence[str | Path] | None = None,
) -> dict[str, Any]:
    """Writes the records of ``inputs`` that contain no evaluation item to ``output`` (JSONL, or
    ``.json``/``.csv``/``.parquet`` by name), or with ``output`` None to ``outputs``, one JSON
    Lines file per input in their order.

    A record contains an item when at least ``threshold`` of the item's character
    ``ngram``-grams occur in the record's ``fields`` (default: all), both sides compared on
    alphanumeric characters only (punctuation, spacing, width and case ignored). ``evals``:
    evaluation files, all read with ``eval_fields`` (default: every field), or a mapping file →
    fields. ``report`` gets one line per removed record (source, index, evaluation file and
    index, overlap, the item's text). Returns per-source counts
    (``records = kept + removed + rejected``) and how many evaluation items were hit.

    Only an item's question side is checked, so an item is used whatever its answer fields
    hold; an item whose checked fields are missing or empty is left out and counted
    (``eval_no_text``). A malformed evaluation row raises, or with ``eval_on_error="skip"``
    (default: ``on_error``) is counted in ``eval_rejected`` (first ones in
    ``eval_rejections``).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise _core.ConfigError("decontaminate needs at least one training file")
    if isinstance(evals, Mapping):
        eval_list = [(Path(p), list(f) if f is not None else None) for p, f in evals.items()]
    else:
        default = list(eval_fields) if eval_fields is not None else None
        eval_list = [(Path(p), default) for p in evals]
    per_source = check_kept_outputs(paths, output, outputs)
    out = Path(output) if output is not None else per_source[0]
    if on_error == "skip" and quarantine is None:
        quarantine = default_quarantine_path(out)
    target_of: AbstractContextManager[Path | None] = (
        staged_output(out, side_files=(report, quarantine))
        if output is not None
        else nullcontext(None)
    )
    with target_of as target:
        stats: dict[str, Any] = _core.decontaminate_files(
            list(zip(paths, _source_names(paths), strict=True)),
            eval_list,
            target,
            outputs=per_source if output is None else None,
            report=report,
            quarantine=quarantine,
            fields=list(fields) if fields is not None else None,
            ngram=ngram,
            threshold=threshold,
            format=format,
            encoding=encoding,
            on_error=on_error,
            batch_size=batch_size,
            eval_on_error=eval_on_error or on_error,
        )
    stats["output"] = str(output) if output is not None else None
    if output is None:
        stats["outputs"] = [str(p) for p in per_source]
    stats["report"] = str(report) if report is not None else None
    stats["config"] = {"ngram": ngram, "threshold": threshold, "fields": fields}
    return stats
