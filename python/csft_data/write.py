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
from collections.abc import Iterable, Iterator
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
def staged_output(path: str | Path, side_files: Iterable[str | Path | None] = ()) -> Iterator[Path]:
    """Yields the path a JSONL-writing stage should write to; afterwards, the file at ``path``
    is in the format its name asks for. JSONL outputs are written in place (the stage is atomic
    itself). When the conversion fails, ``side_files`` (the stage's other outputs, already
    committed) are removed too, so the run leaves nothing behind."""
    out = Path(path)
    fmt = output_format(out)
    if fmt == "jsonl":
        yield out
        return
    staged = _hidden_sibling(out, "jsonl")
    try:
        yield staged
        try:
            convert_jsonl(staged, out, fmt)
        except ConfigError:
            for side in side_files:
                if side is not None:
                    Path(side).unlink(missing_ok=True)
            raise
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
    """``[`` + the lines joined by ``,`` + ``]``: the records exactly as they are. The staged
    file comes from csft-data's own JSONL writers (one record per line, each ending in a
    newline, no blank lines), so the newlines become ``,\n`` block by block, in C."""
    block_size = 1 << 22
    with src.open("rb") as f, dst.open("wb") as out:
        pending = f.read(block_size)
        if not pending:
            out.write(b"[]\n")
            return
        out.write(b"[\n")
        while True:
            block = f.read(block_size)
            if not block:
                break
            out.write(pending.replace(b"\n", b",\n"))
            pending = block
        # the last record's newline closes the array instead of separating
        out.write(pending[:-1].replace(b"\n", b",\n") + b"\n]\n")


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
