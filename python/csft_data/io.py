"""Reading records into polars (or Arrow) through the Rust streaming readers.

The records are parsed in Rust; each batch crosses into Python once, as one NDJSON buffer that
polars parses natively, so no per-record Python objects are built. Use :func:`read_batches` for
files larger than memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from csft_data._core import RecordBatch, RecordReader

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

OnError = Literal["raise", "skip"]


def batch_to_polars(batch: RecordBatch) -> pl.DataFrame:
    """One batch as a DataFrame (columns are the union of the batch's fields)."""
    import polars as pl  # imported when used: `import csft_data` works without it loaded

    if len(batch) == 0:
        return pl.DataFrame()
    return pl.read_ndjson(io.BytesIO(batch.to_ndjson()), infer_schema_length=None)


def open_reader(
    path: str | Path,
    *,
    format: str | None = None,
    encoding: str = "auto",
    compression: str = "auto",
    on_error: OnError = "raise",
    required: Sequence[str] | None = None,
    batch_size: int = 4096,
    delimiter: str | None = None,
) -> RecordReader:
    """A :class:`RecordReader` with the given options (see :func:`read_batches`)."""
    return RecordReader(
        path,
        format=format,
        encoding=encoding,
        compression=compression,
        on_error=on_error,
        required=list(required) if required is not None else None,
        batch_size=batch_size,
        delimiter=delimiter,
    )


def read_batches(path: str | Path, **options: Any) -> Iterator[pl.DataFrame]:
    """Stream a file as polars DataFrames of at most ``batch_size`` records.

    Options: ``format`` (jsonl/json/csv/parquet; default from the file name), ``encoding``
    (auto/utf-8/gbk), ``compression`` (auto/none/gzip/zstd), ``on_error`` (raise/skip),
    ``required`` (field names every record must have), ``batch_size``, ``delimiter`` (CSV).
    With ``on_error="skip"`` rejected records are dropped from the frames; read them with
    :class:`RecordReader` and ``RecordBatch.rejections()`` to quarantine them.
    """
    for batch in open_reader(path, **options):
        if len(batch):
            yield batch_to_polars(batch)


def read(path: str | Path, **options: Any) -> pl.DataFrame:
    """Read a whole file into one polars DataFrame (options as :func:`read_batches`).

    Records with different fields (mixed schemas) are combined; missing fields are null.
    """
    import polars as pl

    frames = list(read_batches(path, **options))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def read_arrow(path: str | Path, **options: Any) -> pa.Table:
    """Read a whole file as a ``pyarrow.Table`` (needs ``pip install pyarrow``)."""
    try:
        import pyarrow as pa
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("read_arrow needs pyarrow: pip install pyarrow") from e
    return pa.table(read(path, **options))
