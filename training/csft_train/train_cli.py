"""``csft-data train ...`` subcommands (filled in by the training work)."""

from __future__ import annotations

from typing import Any


def add_train_parsers(tr: Any) -> None:
    """Adds the ``train`` subcommands to the subparsers ``tr``."""
