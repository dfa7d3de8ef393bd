"""Output formats beside JSON Lines, chosen by the output's file name.

The Rust stages write JSON Lines (optionally ``.gz`` / ``.zst``). :func:`staged_output` lets a
stage write JSONL to a hidden temporary file and then turns it into what the output name asks
for: ``.json`` (one JSON array, records unchanged), ``.parquet`` (columns are the union of the
records' fields; missing fields are null) or ``.csv`` (flat records only). The final file
appears atomically (written beside it, then renamed); on failure nothing is left behind.
Any other name is JSON Lines.

Every command that writes goes through two checks first: :func:`check_outputs` refuses an
output that is (or resolves to) one of the inputs, or another output, before anything is
written; :func:`remove_stale_temps` clears the output folders of the temporary files that runs
killed before they could clean up (``kill -9``, a power cut) left behind. Temporary files are
named ``.NAME.tmp-PID`` (the Rust writers) or ``.NAME.tmp-PID.jsonl`` / ``.NAME.tmp-PID.part``
(this module), ``PID`` being the writing process: a file whose process is gone is stale; so is
an out-of-core dedup's temporary folder, ``.csft-dedup-RANDOM.tmp-PID``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from csft_data._core import ConfigError

OutputFormat = Literal["jsonl", "json", "csv", "parquet"]

_BY_SUFFIX: dict[str, OutputFormat] = {".json": "json", ".csv": "csv", ".parquet": "parquet"}


def output_format(path: str | Path) -> OutputFormat:
    """The format an output name asks for (JSON Lines unless it ends in .json/.csv/.parquet)."""
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "jsonl")


#: A temporary file of a csft-data writer: ``.NAME.tmp-PID``, optionally ``.jsonl``/``.part``.
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>[1-9][0-9]{0,9})(?:\.jsonl|\.part)?")
#: The temporary folder of an out-of-core dedup (``rust/dedup/spill.rs``).
TEMP_FOLDER = re.compile(r"\.csft-dedup-[A-Za-z0-9]+\.tmp-(?P<pid>[1-9][0-9]{0,9})")

#: A labelled path of a command line: (what it is, e.g. ``-o/--output``, the path as given).
PathArg = tuple[str, str | Path | None]


def temp_sibling(path: str | Path) -> Path:
    """The temporary name this process writes ``path`` under (``.NAME.tmp-PID``)."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{os.getpid()}")


def _hidden_sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}.{tag}")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` under a temporary name, then renames it into place."""
    dest = Path(path)
    tmp = temp_sibling(dest)
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same inode (hard links, symbolic links) or,
    for names that do not exist yet, the same absolute path once symbolic links, ``.`` and
    ``..`` are resolved."""
    try:
        sa, sb = Path(a).stat(), Path(b).stat()
    except OSError:
        pass
    else:
        if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
            return True
    return Path(a).resolve() == Path(b).resolve()


def check_outputs(inputs: Iterable[PathArg], outputs: Iterable[PathArg]) -> None:
    """Raises :class:`ConfigError`, naming both paths, when an output is one of the inputs
    (same file, however it is spelled: ``./x``, absolute or relative, a symbolic or hard link)
    or when two outputs are one file. ``None`` paths (options not given) are skipped. Call it
    before anything is written."""
    ins = [(label, Path(p)) for label, p in inputs if p is not None]
    outs = [(label, Path(p)) for label, p in outputs if p is not None]
    for k, (label, out) in enumerate(outs):
        for in_label, src in ins:
            if same_file(out, src):
                raise ConfigError(
                    f"{label} {out} would overwrite {in_label} {src} (the same file, "
                    f"{src.resolve()}); nothing was written"
                )
        for other_label, other in outs[:k]:
            if same_file(out, other):
                raise ConfigError(
                    f"{other_label} {other} and {label} {out} are the same file "
                    f"({out.resolve()}); nothing was written"
                )


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0: no such process → gone; not ours → alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid at all: leave its files alone
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Removes, from ``folder`` (not its subfolders), the temporary files of csft-data writers
    (see :data:`TEMP_NAME`) and the temporary folders of out-of-core dedups
    (:data:`TEMP_FOLDER`) whose process is gone; returns them. Those of live processes,
    anything else (other names, other folders, links) and a missing folder are left alone."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        m = TEMP_NAME.fullmatch(entry.name)
        folder_m = TEMP_FOLDER.fullmatch(entry.name)
        is_dir = folder_m is not None and entry.is_dir(follow_symlinks=False)
        if is_dir:
            m = folder_m
        elif m is None or not entry.is_file(follow_symlinks=False):
            continue
        if m is None or pid_alive(int(m["pid"])):
            continue
        try:
            if is_dir:
                shutil.rmtree(entry.path)
            else:
                Path(entry.path).unlink()
        except OSError:
            continue  # removed meanwhile, or not ours to remove: the run goes on without it
        removed.append(Path(entry.path))
    return removed


def quarantine_arg(
    quarantine: str | Path | None, on_error: str, output: str | Path | None
) -> PathArg:
    """The quarantine file a command writes: ``quarantine`` (``--quarantine``) or, in skip
    mode, the default one beside ``output``."""
    from csft_data.normalize import default_quarantine_path  # (normalize imports this module)

    if quarantine is not None or on_error != "skip" or output is None:
        return "--quarantine", quarantine
    return "the default quarantine file", default_quarantine_path(output)


def prepare_outputs(
    inputs: Iterable[PathArg], outputs: Iterable[PathArg], folders: Iterable[str | Path] = ()
) -> list[Path]:
    """What a writing command does first: :func:`check_outputs`, then
    :func:`remove_stale_temps` in every output's folder and in ``folders``; returns the
    temporary files removed."""
    outs = [(label, p) for label, p in outputs if p is not None]
    check_outputs(inputs, outs)
    seen: set[Path] = set()
    removed = []
    for d in [*(Path(p).parent for _, p in outs), *(Path(f) for f in folders)]:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            removed += remove_stale_temps(d)
    return removed


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


def write_parquet(
    src: str | Path,
    dst: str | Path,
    schema: dict[str, Any] | None = None,
    *,
    name: str | Path | None = None,
) -> None:
    """The JSON Lines file ``src`` as Parquet at ``dst``, streamed by polars (the records are
    never all in memory): with ``schema`` (a polars schema) its columns, else the union of the
    records' fields, types inferred over the whole file (missing fields are null). The one
    Parquet writer of the package (``convert_jsonl`` and the build's train/val files). Raises
    :class:`ConfigError` naming ``name`` (default ``dst``) when the records do not fit (one
    field with clashing types)."""
    import polars as pl  # imported when used: `import csft_data` works without it loaded

    src, dst = Path(src), Path(dst)
    try:
        if src.stat().st_size == 0:
            pl.DataFrame(schema=schema).write_parquet(dst)
        elif schema is not None:
            pl.scan_ndjson(src, schema=schema).sink_parquet(dst)
        else:
            pl.scan_ndjson(src, infer_schema_length=None).sink_parquet(dst)
    except pl.exceptions.PolarsError as e:
        raise ConfigError(f"{name or dst}: cannot write these records as parquet: {e}") from None


def _write_columnar(src: Path, part: Path, fmt: OutputFormat, dst: Path) -> None:
    if fmt == "parquet":
        write_parquet(src, part, name=dst)
        return
    import polars as pl

    try:
        frame = (
            pl.read_ndjson(src, infer_schema_length=None) if src.stat().st_size else pl.DataFrame()
        )
        nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
        if nested:
            raise ConfigError(
                f"{dst}: CSV cannot hold the nested fields {nested}; "
                "write .jsonl, .json or .parquet"
            )
        frame.write_csv(part)
    except pl.exceptions.PolarsError as e:
        raise ConfigError(f"{dst}: cannot write these records as {fmt}: {e}") from e
