"""Output formats beside JSON Lines, chosen by the output's file name.

The Rust stages write JSON Lines (optionally ``.gz`` / ``.zst``). :func:`staged_output` lets a
stage write JSONL to a hidden temporary file and then turns it into what the output name asks
for: ``.json`` (one JSON array, records unchanged), ``.parquet`` (columns are the union of the
records' fields; missing fields are null) or ``.csv`` (flat records only). The final file
appears atomically (written beside it, then renamed); on failure nothing is left behind.
Any other name is JSON Lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import polars as pl

from csft_data._core import ConfigError

OutputFormat = Literal["jsonl", "json", "csv", "parquet"]

_BY_SUFFIX: dict[str, OutputFormat] = {".json": "json", ".csv": "csv", ".parquet": "parquet"}


def output_format(path: str | Path) -> OutputFormat:
    """The format an output name asks for (JSON Lines unless it ends in .json/.csv/.parquet)."""
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "jsonl")


def _hidden_sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{tag}")


@contextmanager
def staged_output(path: str | Path) -> Iterator[Path]:
    """Yields the path a JSONL-writing stage should write to; afterwards, the file at ``path``
    is in the format its name asks for. JSONL outputs are written in place (the stage is atomic
    itself)."""
    out = Path(path)
    fmt = output_format(out)
    if fmt == "jsonl":
        yield out
        return
    staged = _hidden_sibling(out, "jsonl")
    try:
        yield staged
        convert_jsonl(staged, out, fmt)
    finally:
        staged.unlink(missing_ok=True)


def convert_jsonl(src: str | Path, dst: str | Path, fmt: OutputFormat | None = None) -> None:
    """Writes the JSON Lines file ``src`` to ``dst`` as ``fmt`` (default: from ``dst``'s name),
    atomically. Raises :class:`ConfigError` when the records do not fit the format (nested
    fields in CSV, one field with clashing types in Parquet)."""
    src, dst = Path(src), Path(dst)
    fmt = fmt or output_format(dst)
    part = _hidden_sibling(dst, "part")
    try:
        if fmt == "jsonl":
            part.write_bytes(src.read_bytes())
        elif fmt == "json":
            _write_json_array(src, part)
        else:
            _write_columnar(src, part, fmt, dst)
        part.replace(dst)
    except pl.exceptions.PolarsError as e:
        raise ConfigError(f"{dst}: cannot write these records as {fmt}: {e}") from e
    finally:
        part.unlink(missing_ok=True)


def _write_json_array(src: Path, dst: Path) -> None:
    """``[`` + the lines joined by ``,`` + ``]``: the records exactly as they are, streamed."""
    with src.open("rb") as f, dst.open("wb") as out:
        out.write(b"[")
        first = True
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            out.write(b"\n" if first else b",\n")
            out.write(line)
            first = False
        out.write(b"\n]\n" if not first else b"]\n")


def _write_columnar(src: Path, part: Path, fmt: OutputFormat, dst: Path) -> None:
    if src.stat().st_size == 0:
        frame = pl.DataFrame()
    else:
        frame = pl.read_ndjson(src, infer_schema_length=None)
    if fmt == "parquet":
        frame.write_parquet(part)
        return
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if nested:
        raise ConfigError(
            f"{dst}: CSV cannot hold the nested fields {nested}; write .jsonl, .json or .parquet"
        )
    frame.write_csv(part)
