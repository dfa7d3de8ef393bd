"""The command registry: commands that other distributions add under ``csft-data``.

A distribution registers a function ``add(subparsers)`` under the entry-point group
``csft_data.commands``, named after the command group it fills: ``train`` (``train pt|sft|dpo|
select-prefs|sweep``) or ``eval`` (the model-driven ``eval cmb|mcqa|memorization|judge``).
The training module, the separate ``csft-train`` distribution in ``training/`` (it brings
torch/transformers/peft/trl), registers both. When nothing is registered (or it fails to
import), the commands still show in ``--help`` and running one prints the install command and
exits with 2. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from csft_data.cli.common import EXIT_ERROR

#: The entry-point group of the registered command groups.
COMMANDS_GROUP = "csft_data.commands"
INSTALL_HINT = "python -m pip install ./training  (from the csft-data source tree)"

#: Commands that need a model, by group, with their one-line help (shown when not installed).
TRAIN_COMMANDS = {
    "pt": "continued pre-training (causal LM) on packed token shards from a TOML config",
    "sft": "supervised fine-tuning (full or LoRA) from a TOML config",
    "dpo": "DPO on chosen/rejected pairs from a TOML config",
    "select-prefs": "select preference pairs by the strength of an ensemble of reward models",
    "sweep": "grid of SFT runs (cut-off length x epochs x learning rate), one folder each",
}
MODEL_EVAL_COMMANDS = {
    "cmb": "evaluate a model on CMB (gen or loglik) and score it",
    "mcqa": "evaluate a model on any MCQA file (CMExam, CMMLU, through the adapters)",
    "memorization": "share of training samples whose suffix the model reproduces",
    "judge": "score each answer alone with a judge model",
}


def _missing(group: str, name: str, error: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        print(
            f"csft-data: error: `csft-data {group} {name}` needs the training module, which is "
            f"not installed ({error}).\nInstall it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return EXIT_ERROR

    return run


def _add_stubs(sub: Any, group: str, commands: dict[str, str], error: ImportError) -> None:
    for name, help_text in commands.items():
        p = sub.add_parser(name, help=f"{help_text} [needs csft-train]", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_missing(group, name, error))


def registered(group: str) -> Callable[[Any], None]:
    """The function registered for the command group ``group``; ``ImportError`` when none is
    (or it cannot be imported). Several registrations: the first by distribution name."""
    found = sorted(
        entry_points(group=COMMANDS_GROUP, name=group),
        key=lambda ep: (ep.dist.name if ep.dist is not None else "", ep.value),
    )
    if not found:
        raise ImportError(f"nothing registers `{group}` commands under {COMMANDS_GROUP!r}")
    add: Callable[[Any], None] = found[0].load()
    return add


def _add_group(sub: Any, group: str, stubs: dict[str, str]) -> None:
    try:
        add = registered(group)
    except ImportError as e:
        _add_stubs(sub, group, stubs, e)
    else:
        add(sub)


def register(sub: Any) -> None:
    """Adds ``train`` and its subcommands to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "train", help="train models: continued pre-training, SFT, DPO, preference selection, sweeps"
    )
    tr = p.add_subparsers(dest="train_command", required=True, metavar="TRAIN")
    _add_group(tr, "train", TRAIN_COMMANDS)


def add_model_eval_parsers(ev: Any) -> None:
    """Adds the model-driven ``eval`` subcommands to the ``eval`` subparsers ``ev``."""
    _add_group(ev, "eval", MODEL_EVAL_COMMANDS)
