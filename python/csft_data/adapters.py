"""Source adapters: convert each public medical dataset, as its authors ship it, into Alpaca
records (``instruction``, ``input``, ``output``, ``system``, ``history``, plus provenance:
``source`` = adapter, ``style``, ``id`` = the dataset's own id or ``file:index``, and ``turn``
for per-turn dialogue records).

The conversion runs in the Rust core (``rust/adapters/``). Every input unit (record, text
block, TSV row) is accounted for: converted, skipped by a documented rule of the adapter (e.g.
webMedQA's ``is_answer=0`` rows), or rejected with file/line/record/field and reason: raised as
:class:`csft_data.ParseError` with ``on_error="raise"``, written to the quarantine file with
``on_error="skip"``. Output order follows input order; two runs give identical bytes.

Templates (``{placeholder}`` strings, CollectiveSFT's exact per-dataset strings by default) can
be overridden by name; see :func:`adapters` for each adapter's templates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from csft_data import _core
from csft_data.normalize import default_quarantine_path

STYLES = ("mcqa", "qa", "dialogue", "ner_intent", "generic")


def adapters() -> list[dict[str, Any]]:
    """The adapters: ``name``, ``style``, ``dataset`` (the files it reads), ``description`` and
    ``templates`` (name → default text)."""
    return _core.adapters()


def adapter_names() -> list[str]:
    return [a["name"] for a in adapters()]


def convert(
    adapter: str,
    inputs: Sequence[str | Path] | str | Path,
    output: str | Path,
    *,
    templates: Mapping[str, str] | None = None,
    per_conversation: bool = False,
    on_error: str = "raise",
    quarantine: str | Path | None = None,
    mapping: Mapping[str, str] | None = None,
    batch_size: int = 4096,
    questions_only: bool = False,
) -> dict[str, Any]:
    """Converts ``inputs`` with ``adapter`` into ``output`` (JSONL, ``.gz``/``.zst`` ok,
    written atomically).

    ``templates`` overrides default templates by name (an unknown name or placeholder is a
    :class:`csft_data.ConfigError`). ``per_conversation`` makes dialogue adapters emit one
    record per conversation instead of one per assistant turn. ``mapping`` (``mapping``
    adapter only) maps output fields (``instruction``, ``input``, ``output``, ``system``,
    ``history``, ``id``) to input field names. With ``on_error="skip"`` rejected units go to
    ``quarantine`` (default ``OUT.quarantine.jsonl``). ``questions_only`` reads an evaluation
    set for decontamination: answer-side defects (an empty or missing answer, an answer naming
    no option) do not reject an item, whose question and options are all that is checked; an
    item without question text is still rejected.

    Returns counts: ``records`` (input units) = ``converted`` + ``skipped`` + ``rejected``;
    ``written`` output records; per file; ``skipped_by_reason``; ``rejected_by_reason``
    (``kind (field)``) and the first ``rejections``.
    """
    paths: list[PathLike[str] | str] = (
        [Path(inputs)] if isinstance(inputs, str | Path) else [Path(p) for p in inputs]
    )
    if on_error == "skip" and quarantine is None:
        quarantine = default_quarantine_path(output)
    t0 = time.perf_counter()
    stats = _core.adapt(
        adapter,
        paths,
        Path(output),
        templates=dict(templates) if templates else None,
        per_conversation=per_conversation,
        on_error=on_error,
        quarantine=Path(quarantine) if quarantine is not None else None,
        mapping=dict(mapping) if mapping else None,
        batch_size=batch_size,
        questions_only=questions_only,
    )
    stats["seconds"] = time.perf_counter() - t0
    return stats
