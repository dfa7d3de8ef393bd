"""Parsers of the training module's commands, hooked under ``csft-data train`` and
``csft-data eval`` through the entry-point group ``csft_data.commands`` (see
``csft_data.cli.train``). Importing this module must not import torch."""

from __future__ import annotations

from csft_train.eval_cli import add_eval_parsers as add_eval_parsers
from csft_train.train_cli import add_train_parsers as add_train_parsers

__all__ = ["add_eval_parsers", "add_train_parsers"]
