"""Hyper-parameter sweeps as CollectiveSFT ran them (cut-off length × epochs × learning rate):
``csft-data train sweep CONFIG``.

The grid is ``[sweep] cutoff_len × epochs × learning_rate`` (a missing list is the single value
of ``[data]``/``[train]``). Each run trains the SFT of the same config with its three values in
``<[train] output_dir>/lr<lr>_ep<epochs>_cut<cutoff>/``, which holds its ``config.toml`` and,
once finished, ``metrics.json``; a run whose ``metrics.json`` exists is skipped, and an
unfinished one resumes from its last checkpoint. ``sweep.json`` in the root lists every run with
its final metrics.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from csft_train.config import Config


def run_name(lr: float, epochs: float, cutoff: int) -> str:
    return f"lr{lr:g}_ep{epochs:g}_cut{cutoff}"


def grid(cfg: Config) -> list[Config]:
    """One config per grid point, with its own ``output_dir``."""
    root = Path(cfg.train.output_dir)
    cuts = cfg.sweep.cutoff_len or [cfg.data.cutoff_len]
    epochs = cfg.sweep.epochs or [cfg.train.epochs]
    lrs = cfg.sweep.learning_rate or [cfg.train.learning_rate]
    runs = []
    for lr, ep, cut in itertools.product(lrs, epochs, cuts):
        run = copy.deepcopy(cfg)
        run.train.learning_rate = float(lr)
        run.train.epochs = float(ep)
        run.data.cutoff_len = int(cut)
        run.train.output_dir = str(root / run_name(lr, ep, cut))
        run.sweep.cutoff_len, run.sweep.epochs, run.sweep.learning_rate = [], [], []
        runs.append(run)
    return runs


def run_sweep(cfg: Config) -> list[dict[str, Any]]:
    """Trains every grid point not yet finished; returns one row per run."""
    from csft_train.sft import train_sft

    rows: list[dict[str, Any]] = []
    for run in grid(cfg):
        out = Path(run.train.output_dir)
        done = out / "metrics.json"
        row: dict[str, Any] = {
            "run": out.name,
            "learning_rate": run.train.learning_rate,
            "epochs": run.train.epochs,
            "cutoff_len": run.data.cutoff_len,
        }
        if done.is_file():
            row["status"] = "skipped (finished)"
            row["metrics"] = json.loads(done.read_text("utf-8"))
        else:
            print(f"sweep: run {out.name}", file=sys.stderr, flush=True)
            row["status"] = "trained"
            row["metrics"] = train_sft(run)
        rows.append(row)
    root = Path(cfg.train.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows
