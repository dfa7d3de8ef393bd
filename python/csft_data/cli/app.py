"""The ``csft-data`` command line: one program, one subcommand per job.

Exit codes (as ruff; :mod:`csft_data.cli.common`): 0 done and clean; 1 done, but records were
rejected (see the quarantine file); 2 error (bad input in raise mode, bad option, missing file) —
nothing was written.

Each command module's ``register(sub)`` adds its subcommands. Before a command that writes runs,
:func:`main` checks its files (the parser default ``files``, see
:data:`csft_data.cli.common.Files`): an output that is one of its inputs (or another output) is
refused, and temporary files that killed runs left in the output folders are removed
(:func:`csft_data.write.prepare_outputs`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from csft_data import __version__
from csft_data._core import CsftDataError
from csft_data.cli import (
    adapt,
    build,
    convert,
    decontam,
    dedup,
    diversify,
    lengths,
    normalize,
    pretrain,
    train,
)
from csft_data.cli import eval as evaluate
from csft_data.cli.common import EXIT_ERROR, EXIT_INTERRUPTED
from csft_data.write import prepare_outputs

#: The command modules, in the order of ``csft-data --help``.
COMMANDS = (
    normalize,
    dedup,
    lengths,
    adapt,
    convert,
    build,
    pretrain,
    decontam,
    diversify,
    evaluate,
    train,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csft-data",
        description="Curate medical SFT corpora: read, normalize, deduplicate, build splits.",
    )
    parser.add_argument("--version", action="version", version=f"csft-data {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def _prepare(args: argparse.Namespace) -> None:
    # ``build`` checks its recipe's files itself, under the lock of its output folder
    files = getattr(args, "files", None)
    if files is None:
        return
    for path in prepare_outputs(*files(args)):
        print(f"csft-data: removed {path}, left by an interrupted run", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # the command as given, for the launchers that run it again under torchrun (--nproc)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _prepare(args)
        code: int = args.func(args)
        return code
    except (CsftDataError, OSError) as e:
        print(f"csft-data: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("csft-data: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
