"""Normalize a whole file: read (Rust, streaming) → convert/clean (Rust, parallel) → JSONL.

Python only drives the batch loop and the progress bar. Outputs are atomic: the JSONL (and, in
skip mode, the quarantine file of rejected records) appear complete, or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from csft_data._core import ConfigError, JsonlWriter, Normalizer, RecordReader
from csft_data.io import OnError, open_reader
from csft_data.write import staged_output


@dataclass(frozen=True)
class NormalizeSummary:
    """What a :func:`normalize_file` run did; ``records_in == written + rejected``."""

    input: str
    output: str
    quarantine: str | None
    format: str
    encoding: str
    convert: str | None
    records_in: int
    written: int
    rejected: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One human-readable summary line."""
        rate = self.records_in / self.seconds if self.seconds > 0 else float("inf")
        text = (
            f"{self.input}: {self.records_in:,} records ({self.format}, {self.encoding}) → "
            f"{self.written:,} written to {self.output}"
        )
        if self.quarantine is not None:
            text += f", {self.rejected:,} rejected to {self.quarantine}"
        conv = f", convert {self.convert}" if self.convert else ""
        return text + f"{conv} in {self.seconds:.2f}s ({rate:,.0f} records/s)"


def _stream(
    reader: RecordReader,
    normalizer: Normalizer,
    output: Path,
    q_path: Path | None,
    bar: tqdm[Any],
) -> tuple[int, int]:
    """Normalizes every batch into ``output`` (JSONL); returns (written, rejected)."""
    writer = JsonlWriter(output)
    q_writer = JsonlWriter(q_path) if q_path is not None else None
    try:
        seen = 0
        for batch in reader:
            normalizer.apply(batch)
            writer.write(batch)
            if q_writer is not None and batch.num_rejected:
                q_writer.write_rejections(batch)
            bar.update(reader.bytes_read - seen)
            seen = reader.bytes_read
        # quarantine first: once the main output is visible, everything is there
        rejected = q_writer.commit() if q_writer is not None else 0
        written = writer.commit()
    except BaseException:
        writer.abort()
        if q_writer is not None:
            q_writer.abort()
        raise
    return int(written), int(rejected)


def default_quarantine_path(output: str | Path) -> Path:
    """``out.jsonl`` → ``out.quarantine.jsonl`` (same folder)."""
    out = Path(output)
    name = out.name
    for ext in (".jsonl.gz", ".jsonl.zst", ".jsonl", ".json"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return out.with_name(name + ".quarantine.jsonl")


def normalize_file(
    input: str | Path,
    output: str | Path,
    *,
    convert: str | None = None,
    fields: Sequence[str] | None = None,
    unicode: str = "none",
    unicode_fields: Sequence[str] | None = None,
    newlines: bool = True,
    control: bool = True,
    whitespace: bool = True,
    format: str | None = None,
    encoding: str = "auto",
    on_error: OnError = "raise",
    quarantine: str | Path | None = None,
    batch_size: int = 4096,
    progress: bool = False,
) -> NormalizeSummary:
    """Stream ``input`` (any supported format) to ``output`` as normalized JSON Lines (or
    ``.json`` / ``.csv`` / ``.parquet`` by the output's name, see :mod:`csft_data.write`).

    ``fields`` limits the work to those top-level fields and makes them required (a record
    without one is an error, or a rejection in skip mode). With ``on_error="skip"`` every
    rejected record goes, with file, line and reason, to ``quarantine`` (default
    ``<output stem>.quarantine.jsonl``). Raises :class:`csft_data.ParseError` on bad input in
    raise mode; then no output file is left behind.
    """
    start = time.perf_counter()
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"unknown on_error '{on_error}': expected 'raise' or 'skip'")
    if quarantine is not None and on_error != "skip":
        raise ConfigError("a quarantine file needs on_error='skip'")
    if Path(input).resolve() == Path(output).resolve():
        raise ConfigError(f"output {output} would overwrite the input")
    normalizer = Normalizer(
        convert=convert,
        fields=list(fields) if fields is not None else None,
        unicode=unicode,
        unicode_fields=list(unicode_fields) if unicode_fields is not None else None,
        newlines=newlines,
        control=control,
        whitespace=whitespace,
    )
    reader = open_reader(
        input,
        format=format,
        encoding=encoding,
        on_error=on_error,
        required=fields,
        batch_size=batch_size,
    )
    q_path = Path(quarantine or default_quarantine_path(output)) if on_error == "skip" else None
    bar = tqdm(
        total=reader.total_bytes,
        unit="B",
        unit_scale=True,
        desc=f"normalize {Path(input).name}",
        disable=not progress,
        leave=False,
    )
    try:
        with staged_output(output, side_files=(q_path,)) as target:
            written, rejected = _stream(reader, normalizer, target, q_path, bar)
    finally:
        bar.close()
    records_in = int(reader.records + reader.rejected)
    if written + rejected != records_in:  # pragma: no cover - an accounting bug in the core
        raise RuntimeError(f"lost records: {records_in} in, {written} + {rejected} out")
    return NormalizeSummary(
        input=str(input),
        output=str(output),
        quarantine=str(q_path) if q_path is not None else None,
        format=reader.format,
        # an encoding still undecided after the whole file means the file was pure ASCII
        encoding="ascii" if reader.encoding == "auto" else reader.encoding,
        convert=convert,
        records_in=records_in,
        written=int(written),
        rejected=int(rejected),
        seconds=time.perf_counter() - start,
    )
