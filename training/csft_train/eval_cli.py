"""``csft-data eval cmb|mcqa|memorization|judge`` subcommands (filled in by the eval work)."""

from __future__ import annotations

from typing import Any


def add_eval_parsers(ev: Any) -> None:
    """Adds the model-driven ``eval`` subcommands to the subparsers ``ev``."""
