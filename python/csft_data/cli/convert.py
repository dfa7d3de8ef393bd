"""``csft-data convert CONFIG [TEXT...]``: text converted between Chinese scripts with a built-in
OpenCC config (the arguments, else the lines of stdin); ``--list`` lists the configs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from csft_data._core import convert, opencc_configs
from csft_data.cli.common import EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(opencc_configs()))
        return EXIT_OK
    if args.config is None:
        raise SystemExit("csft-data convert: a CONFIG is required (see --list)")
    texts = args.text if args.text else sys.stdin.read().splitlines()
    for line in convert(texts, args.config):
        print(line)
    return EXIT_OK


def register(sub: Any) -> None:
    """Adds ``convert`` to the top-level subparsers ``sub``."""
    p = sub.add_parser("convert", help="convert text between Chinese scripts (OpenCC configs)")
    p.add_argument("config", nargs="?", help="OpenCC config, e.g. t2s")
    p.add_argument("text", nargs="*", help="texts to convert (default: lines of stdin)")
    p.add_argument("--list", action="store_true", help="list the built-in configs")
    p.set_defaults(func=cmd_convert)
