"""What the ``csft-data`` commands share: the exit codes, the shape of the files a command reads
and writes (:data:`Files`) and the option groups several commands take (reading, threads,
progress, output format, running a recipe).

The training module (``csft_train``) imports its exit codes from here too. Nothing here imports
``csft_data._core`` (or torch)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from csft_data.write import PathArg

#: Exit codes (as ruff): 0 done and clean; 1 done, but with findings (records were rejected, a
#: target was not reached, samples were memorized); 2 error (bad input in raise mode, bad option,
#: missing file); 130 interrupted (Ctrl-C).
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

#: What a command reads and writes: (inputs, outputs, other folders it writes into), each path
#: with its option's name for the error message. A command that writes registers the function
#: giving them as its parser's default ``files`` (``p.set_defaults(func=..., files=...)``).
Files = tuple[list["PathArg"], list["PathArg"], list[Path]]
FilesFunction = Callable[[argparse.Namespace], Files]

OUTPUT_HELP = "format by name: .jsonl (.gz/.zst ok; the default), .json, .csv or .parquet"


def inputs(paths: Sequence[Path | None], what: str = "the input") -> list[PathArg]:
    """``paths`` as the input arguments of :data:`Files`."""
    return [(what, p) for p in paths]


def csv_list(value: str) -> list[str]:
    """The ``A,B`` option type: a non-empty comma-separated list of names."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return items


def add_on_error_options(
    p: Any, *, on_error_help: str | None = None, quarantine_help: str | None = None
) -> None:
    """``--on-error raise|skip`` and ``--quarantine`` on the parser or group ``p``."""
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise", help=on_error_help)
    p.add_argument("--quarantine", type=Path, help=quarantine_help)


def add_reading_options(
    p: argparse.ArgumentParser,
    *,
    encoding_help: str | None = None,
    on_error_help: str | None = None,
    quarantine_help: str | None = None,
    batch_size: bool = True,
) -> None:
    """The ``reading`` group of the commands that read record files."""
    r = p.add_argument_group("reading")
    r.add_argument("--format", choices=["jsonl", "json", "csv", "parquet"])
    r.add_argument("--encoding", default="auto", help=encoding_help)
    add_on_error_options(r, on_error_help=on_error_help, quarantine_help=quarantine_help)
    if batch_size:
        r.add_argument("--batch-size", type=int, default=4096)


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads to use (default: one per core); the result does not depend on it",
    )


def add_progress_option(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--progress/--no-progress``; unset (None) means: when stderr is a terminal."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=help)


def show_progress(args: argparse.Namespace) -> bool:
    """``--progress`` as given, else whether stderr is a terminal."""
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def add_output_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-format", choices=["text", "json"], default="text")


def add_recipe_run_options(p: argparse.ArgumentParser) -> None:
    """The options of the commands that run a recipe (``build``, ``pretrain``)."""
    p.add_argument("-o", "--output", type=Path, help="output folder (default: [output] dir)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    add_progress_option(p, help="one line per stage on stderr (default: when stderr is a terminal)")
    add_output_format_option(p)


def stage_printer(args: argparse.Namespace, stages: tuple[str, ...]) -> Any:
    """``on_stage(name, cached)`` printing ``[k/n] name (cached)`` on stderr when asked
    (``--progress``, default: when stderr is a terminal); ``write`` is the last step."""
    show = show_progress(args)

    def on_stage(name: str, cached: bool) -> None:
        if show:
            step = stages.index(name) + 1 if name in stages else len(stages) + 1
            tag = " (cached)" if cached else ""
            print(f"[{step}/{len(stages) + 1}] {name}{tag}", file=sys.stderr, flush=True)

    return on_stage
