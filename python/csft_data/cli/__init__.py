"""The ``csft-data`` command line (``csft-data = csft_data.cli:main``).

Layout: ``app`` (the program, exit codes, the commands without a module of their own and the
files each command writes), ``build``, ``pretrain``, ``decontam``, ``diversify``, ``eval`` (one
module per command group), ``train`` (the commands other distributions register under the
entry-point group ``csft_data.commands``, e.g. csft-train's ``train`` and model ``eval``
commands).
Importing this package imports none of them: :func:`main` does, when run.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``csft-data`` with ``argv`` (default: the process's); returns the exit code."""
    from csft_data.cli.app import main as run

    return run(argv)


__all__ = ["main"]
