"""The ``csft-data`` command line (``csft-data = csft_data.cli:main``).

Layout: ``app`` (the program: the parser, made of each command module's ``register``, and
:func:`main`, which checks a command's files and turns errors into exit codes), ``common`` (the
exit codes, the files a command reads and writes, the option groups several commands share),
then one module per command group, each with its parser, its ``cmd_*`` functions and the files
they read and write: ``normalize`` (``normalize``, ``demo``), ``dedup``, ``lengths``, ``adapt``
(``sources``, ``adapt``), ``convert``, ``build``, ``pretrain``, ``decontam`` (``decontaminate``),
``diversify``, ``eval`` (``eval score|rouge``), and ``train`` (the commands other distributions
register under the entry-point group ``csft_data.commands``, e.g. csft-train's ``train`` and
model ``eval`` commands).
Importing this package imports none of them: :func:`main` does, when run.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``csft-data`` with ``argv`` (default: the process's); returns the exit code."""
    from csft_data.cli.app import main as run

    return run(argv)


__all__ = ["main"]
