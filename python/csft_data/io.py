"""Reading records into polars (or Arrow) through the Rust streaming readers.

The records are parsed in Rust and built into Arrow columns there (``_core.read_arrow``,
``RecordBatch.to_arrow``); polars and pyarrow take those buffers zero-copy through the Arrow
PyCapsule interface, so no JSON text is parsed twice and no per-record Python object is built.
Types are inferred over the whole file (:func:`read`) or the batch (:func:`read_batches`):
values that disagree within a field become text (their JSON), nothing is dropped. Use
:func:`read_batches` for files larger than memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from csft_data._core import RecordBatch, RecordReader
from csft_data._core import read_arrow as _read_arrow

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

OnError = Literal["raise", "skip"]


def batch_to_polars(batch: RecordBatch) -> pl.DataFrame:
    """One batch as a DataFrame (columns are the union of the batch's fields)."""
    import polars as pl  # imported when used: `import csft_data` works without it loaded

    if len(batch) == 0:
        return pl.DataFrame()
    return pl.DataFrame(batch.to_arrow())


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

    return pl.DataFrame(_read_arrow(path, **options))


def read_arrow(path: str | Path, **options: Any) -> pa.Table:
    """Read a whole file as a ``pyarrow.Table`` (needs ``pip install pyarrow``)."""
    try:
        import pyarrow as pa
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("read_arrow needs pyarrow: pip install pyarrow") from e
    # RecordBatchReader, not pa.table: pa.table probes its argument for pandas (an import)
    return pa.RecordBatchReader.from_stream(_read_arrow(path, **options)).read_all()
