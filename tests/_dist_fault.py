"""Runs ``csft-data`` (argv as given) with a planted fault for ``test_train_dist.py``: rank 1
dies (``os._exit(3)``, as a killed process would) right after the checkpoint of step
``CSFT_TEST_DIE_AFTER`` is written. Not a test module."""

from __future__ import annotations

import os
import sys

from csft_train import engine

die_after = int(os.environ["CSFT_TEST_DIE_AFTER"])
_save = engine.Loop.save


def save_then_die(self: engine.Loop, step: int) -> object:
    path = _save(self, step)
    if step == die_after and self.dist.rank == 1:
        os._exit(3)
    return path


engine.Loop.save = save_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    from csft_data.cli import main

    sys.exit(main(sys.argv[1:]))
