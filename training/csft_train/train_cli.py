"""``csft-data train pt|sft|dpo|select-prefs|sweep``: parsers and entry points.

Importing this module does not import torch; each command imports what it needs when it runs.
Exit codes: 0 done, 2 error (bad config, missing file, missing dependency).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from csft_data.cli.common import EXIT_ERROR, EXIT_OK


def _fail(msg: str) -> int:
    print(f"csft-data: error: {msg}", file=sys.stderr)
    return EXIT_ERROR


def _guard(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns expected failures into one error line and exit code 2."""

    def wrapped(args: argparse.Namespace) -> int:
        from csft_train import INSTALL_HINT

        try:
            return run(args)
        except ImportError as e:
            return _fail(f"{e} (install the training extra: {INSTALL_HINT})")
        except (OSError, ValueError, KeyError) as e:
            return _fail(str(e))
        except Exception as e:
            from csft_data import CsftDataError

            if isinstance(e, CsftDataError):
                return _fail(str(e))
            raise

    return wrapped


def _load(args: argparse.Namespace) -> Any:
    from csft_train.config import load_config

    cfg = load_config(args.config)
    if getattr(args, "output_dir", None):
        cfg.train.output_dir = args.output_dir
    if getattr(args, "max_steps", None):
        cfg.train.max_steps = args.max_steps
    if getattr(args, "no_resume", False):
        cfg.train.resume = False
    return cfg


def _torchrun(args: argparse.Namespace) -> int | None:
    """Under ``--nproc N``: the exit status of this command run by torchrun (see
    ``csft_train.dist.relaunch``), else None."""
    from csft_train.dist import relaunch

    rc = relaunch(args.argv, args.nproc)
    return None if rc is None else (EXIT_OK if rc == 0 else EXIT_ERROR)


def _pt(args: argparse.Namespace) -> int:
    from csft_train import require_torch

    require_torch()
    launched = _torchrun(args)
    if launched is not None:
        return launched
    from csft_train.pt import train_pt

    summary = train_pt(_load(args))
    print(json.dumps(summary.get("final", {})))
    return EXIT_OK


def _sft(args: argparse.Namespace) -> int:
    from csft_train import require_torch

    require_torch()
    launched = _torchrun(args)
    if launched is not None:
        return launched
    from csft_train.sft import train_sft

    summary = train_sft(_load(args))
    print(json.dumps(summary.get("final", {})))
    return EXIT_OK


def _dpo(args: argparse.Namespace) -> int:
    from csft_train import require_torch

    require_torch()
    launched = _torchrun(args)
    if launched is not None:
        return launched
    from csft_train.dpo import train_dpo

    summary = train_dpo(_load(args))
    print(json.dumps(summary.get("final", {})))
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    from csft_train import require_torch

    require_torch()
    from csft_train.sweep import run_sweep

    rows = run_sweep(_load(args))
    for r in rows:
        final = r["metrics"].get("final", {})
        print(f"{r['run']}\t{r['status']}\tloss {final.get('loss', float('nan')):.4f}")
    return EXIT_OK


def _select_prefs(args: argparse.Namespace) -> int:
    d = None
    if args.reward_model and args.nproc > 1:  # scoring shared by torchrun ranks
        from csft_train import require_torch

        require_torch()
        import torch

        from csft_train import dist

        launched = _torchrun(args)
        if launched is not None:
            return launched
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        d = dist.join(dist.local_device(device))
    from csft_train.prefs import select_prefs

    stats = select_prefs(
        args.input,
        args.output,
        scores=args.scores,
        models=args.reward_model or (),
        q_low=args.q_low,
        q_high=args.q_high,
        template=args.template,
        cutoff_len=args.cutoff_len,
        annotate=args.annotate,
        batch_size=args.batch_size,
        stats=args.stats or f"{args.output}.stats.json",
        histogram=args.histogram or f"{args.output}.strength.png",
        dist=d,
    )
    if d is not None:
        from csft_train import dist

        dist.close(d)
        if not d.main:
            return EXIT_OK
    print(
        f"{stats['pairs']} pairs, {stats['models']} reward model(s): "
        f"{stats['swapped']} swapped, {stats['dropped']} dropped, {stats['kept']} written "
        f"to {stats['output']}"
    )
    return EXIT_OK


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="TOML config (see training/README.md)")
    p.add_argument("--output-dir", help="override [train] output_dir")
    p.add_argument("--max-steps", type=int, help="override [train] max_steps")
    p.add_argument(
        "--no-resume", action="store_true", help="start over even if a checkpoint exists"
    )


def _nproc(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes on this node (one per GPU): runs the command under torchrun, "
        "data-parallel (training: per [dist] strategy; default 1: this process)",
    )


def add_train_parsers(tr: Any) -> None:
    """Adds the ``train`` subcommands to the subparsers ``tr``."""
    p = tr.add_parser(
        "pt", help="continued pre-training (causal LM) on packed token shards from a TOML config"
    )
    _common(p)
    _nproc(p)
    p.set_defaults(func=_guard(_pt))
    p = tr.add_parser("sft", help="supervised fine-tuning (full or LoRA) from a TOML config")
    _common(p)
    _nproc(p)
    p.set_defaults(func=_guard(_sft))
    p = tr.add_parser("dpo", help="DPO on chosen/rejected pairs from a TOML config")
    _common(p)
    _nproc(p)
    p.set_defaults(func=_guard(_dpo))
    p = tr.add_parser(
        "sweep", help="grid of SFT runs (cut-off length x epochs x learning rate), one folder each"
    )
    _common(p)
    p.set_defaults(func=_guard(_sweep))
    p = tr.add_parser(
        "select-prefs",
        help="select preference pairs by the strength of an ensemble of reward models",
    )
    p.add_argument("input", help="ranking data (chosen/rejected), any format csft-data reads")
    p.add_argument("-o", "--output", required=True, help="selected pairs (JSONL)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--scores",
        help="JSONL, one line per pair: {index?, scores_chosen: [...], scores_rejected: [...]}",
    )
    src.add_argument(
        "--reward-model",
        action="append",
        help="local AutoModelForSequenceClassification folder (repeat for each model)",
    )
    _nproc(p)
    p.add_argument("--q-low", type=float, default=0.1, help="share to swap (weakest, default 0.1)")
    p.add_argument("--q-high", type=float, default=0.1, help="share to drop (strongest, 0.1)")
    p.add_argument("--template", default="intern2", help="chat template for reward models")
    p.add_argument("--cutoff-len", type=int, default=1024)
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="sequences per reward-model forward (sorted by length, right-padded; default 8)",
    )
    p.add_argument("--annotate", action="store_true", help="add preference_mean/_std fields")
    p.add_argument("--stats", help="stats JSON (default OUTPUT.stats.json)")
    p.add_argument("--histogram", help="PNG histogram (default OUTPUT.strength.png)")
    p.set_defaults(func=_guard(_select_prefs))
